#!/bin/sh
# First-use set-up for `make run`: an embedded-default lendsms.toml in the
# checkout, a `dev` client and one send key kept in secrets/dev-api-key.
set -eu
BIN=${BIN:-.venv/bin}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8080}

if [ ! -f lendsms.toml ]; then
    "$BIN/lendsms" init --dir .
fi
if [ ! -s secrets/dev-api-key ]; then
    if ! "$BIN/lendsms" clients list --config lendsms.toml | grep -q '^dev	'; then
        "$BIN/lendsms" clients add dev --config lendsms.toml --policy cn-collection \
            --signature 安心消费金融
    fi
    key=$("$BIN/lendsms" keys create --config lendsms.toml --client dev --scope send | tail -n 1)
    umask 077
    printf '%s\n' "$key" > secrets/dev-api-key
fi
key=$(cat secrets/dev-api-key)
cat <<MSG

Development key (client "dev", scope send): $key
Send a first message (it lands in var/outbox.jsonl):

curl -sS -X POST http://$HOST:$PORT/v1/messages \\
  -H "Authorization: Bearer $key" \\
  -H 'Content-Type: application/json' \\
  -H 'Idempotency-Key: first-message-1' \\
  -d '{"to": "+8613812345678", "borrower_id": "B-20931", "purpose": "service",
       "text": "【安心消费金融】您的借款申请（编号JK20261127003）已放款成功，金额8,000.00元。"}'

MSG
