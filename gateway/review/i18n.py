"""Labels of the reviewers' web page in Chinese and English.

The language is ``?lang=`` when given (and then remembered in a cookie), else
that cookie, else the browser's ``Accept-Language`` (any ``zh*`` first: Chinese;
otherwise English). Findings show the rule's own description, which comes from
the policy pack, not from this catalog."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aiohttp import web

LANGUAGES: Final = ("zh", "en")
LANG_COOKIE: Final = "lendsms_lang"

_EN: Final[Mapping[str, str]] = {
    "app_title": "lendsms compliance review",
    "nav_queue": "Queue",
    "nav_summary": "Summary",
    "sign_out": "Sign out",
    "signed_in_as": "Signed in as",
    "login_title": "Sign in",
    "login_intro": "Compliance reviewers sign in with the name and password set by "
    "`lendsms reviewers add`.",
    "name": "Name",
    "password": "Password",
    "sign_in": "Sign in",
    "login_failed": "The name or the password is wrong.",
    "login_throttled": "Too many failed attempts from this address. Try again in a minute.",
    "session_ended": "Your session ended. Please sign in again.",
    "signed_out": "You are signed out, on every device and browser.",
    "filters": "Filters",
    "status": "Status",
    "client": "Client",
    "purpose": "Purpose",
    "category": "Category",
    "source": "Source",
    "date_from": "From",
    "date_to": "To",
    "apply": "Apply",
    "reset": "Reset",
    "any": "Any",
    "source_content": "Content",
    "source_policy": "Contact policy",
    "source_all": "All",
    "col_created": "Created (UTC)",
    "col_message": "Message",
    "col_status": "Status",
    "col_body": "Body (masked)",
    "col_findings": "Findings",
    "queue_empty": "No message matches these filters.",
    "next_page": "Next page",
    "first_page": "First page",
    "open": "Open",
    "message_title": "Message",
    "recipient": "Recipient",
    "created": "Created",
    "segments": "Segments",
    "masked_body": "Body as it would be sent (personal data masked)",
    "findings": "Findings",
    "rule": "Rule",
    "description": "Description",
    "action": "Action",
    "kind": "Kind",
    "whole_message": "whole message",
    "no_findings": "No findings.",
    "decision": "Decision",
    "comment": "Comment (required)",
    "comment_placeholder": "Why you approve or reject this message",
    "approve": "Approve and send",
    "reject": "Reject",
    "confirm_approve": "Approve this message? It will be sent through the normal path.",
    "confirm_reject": "Reject this message? It will never be sent.",
    "read_only_blocked": "This message was blocked by policy. It is shown read-only.",
    "read_only_done": "This message is no longer held. It is shown read-only.",
    "reveal_title": "Reveal the original",
    "reveal_warning": "Revealing shows the original text and phone number. This is recorded "
    "in the audit log with your name and your reason.",
    "reason": "Reason (required)",
    "reveal": "Reveal (recorded)",
    "revealed_title": "Original, revealed for you",
    "revealed_note": "Shown once. This page is not cached; do not copy it elsewhere.",
    "revealed_to": "Phone number",
    "revealed_text": "Original text",
    "done_approved": "Approved. The message goes out through the normal path.",
    "done_rejected": "Rejected. The message will not be sent.",
    "back_to_queue": "Back to the queue",
    "summary_title": "Summary",
    "summary_period": "Messages held or blocked in the last {days} days",
    "by_category": "By category",
    "by_day": "Per day",
    "count": "Count",
    "total": "Total",
    "no_data": "Nothing was held or blocked in this period.",
    "chart_label": "Held and blocked messages per day",
    "refused_title": "Request refused",
    "csrf_refused": "This form has expired or did not come from this page. Nothing was "
    "changed. Go back, reload the page and try again.",
    "not_found_title": "Not found",
    "not_found": "There is no such message, or it is not visible to you.",
    "error_title": "The action could not be done",
    "invalid_input": "Please check the form: a required field is empty or too long.",
    "invalid_filter": "A filter value is not valid.",
    "language": "Language",
    "status_held": "Held",
    "status_blocked": "Blocked",
    "status_rejected": "Rejected",
    "status_queued": "Queued",
    "status_scheduled": "Scheduled",
    "status_sending": "Sending",
    "status_sent": "Sent",
    "status_delivered": "Delivered",
    "status_undelivered": "Undelivered",
    "status_failed": "Failed",
    "status_expired": "Expired",
    "status_cancelled": "Cancelled",
    "purpose_verification_code": "Verification code",
    "purpose_repayment_reminder": "Repayment reminder",
    "purpose_overdue_notice": "Overdue notice",
    "purpose_service": "Service",
    "purpose_marketing": "Marketing",
    "kind_pii": "Personal data",
    "kind_content": "Content",
    "kind_policy": "Policy",
    "action_hold": "hold",
    "action_block": "block",
    "action_mask": "mask",
    "action_note": "note",
    "action_append": "append",
    "cat_violence": "Violence, threats",
    "cat_insult": "Insult, profanity",
    "cat_impersonation": "Impersonating authorities",
    "cat_false_legal": "False legal consequences",
    "cat_legal_action": "Legal action",
    "cat_credit_report": "Credit reporting",
    "cat_exposure": "Exposure, third-party pressure",
    "cat_visit": "Visits",
    "cat_new_borrowing": "New borrowing",
    "cat_collection_fee": "Collection fees",
    "cat_private_channel": "Private channels",
    "cat_obscene": "Obscene",
    "cat_pressure": "Pressure, urgency",
    "cat_third_party": "Debt wording to a contact",
    "cat_unsubscribe": "Unsubscribe wording",
    "cat_signature": "Signature",
    "cat_link": "Links",
    "cat_length": "Length",
    "cat_contact": "Contact policy",
    "cat_cn_id": "ID card number",
    "cat_bank_card": "Bank card number",
    "cat_mobile": "Phone number",
    "cat_email": "E-mail address",
    "cat_us_ssn": "Social security number",
    "cat_passport": "Passport number",
    "cat_person_name": "Person's name",
    "cat_": "No category",
    "series_held": "Still held",
    "series_blocked": "Blocked",
    "series_rejected": "Rejected",
    "series_approved": "Approved",
}

_ZH: Final[Mapping[str, str]] = {
    "app_title": "lendsms 合规审核",
    "nav_queue": "审核队列",
    "nav_summary": "统计",
    "sign_out": "退出登录",
    "signed_in_as": "当前审核员",
    "login_title": "登录",
    "login_intro": "合规审核员使用 `lendsms reviewers add` 设置的用户名和密码登录。",
    "name": "用户名",
    "password": "密码",
    "sign_in": "登录",
    "login_failed": "用户名或密码错误。",
    "login_throttled": "该地址登录失败次数过多，请一分钟后再试。",
    "session_ended": "会话已结束，请重新登录。",
    "signed_out": "您已在所有设备和浏览器上退出登录。",
    "filters": "筛选",
    "status": "状态",
    "client": "客户",
    "purpose": "用途",
    "category": "类别",
    "source": "来源",
    "date_from": "起始日期",
    "date_to": "截止日期",
    "apply": "应用",
    "reset": "重置",
    "any": "全部",
    "source_content": "内容审核",
    "source_policy": "联系策略",
    "source_all": "全部",
    "col_created": "创建时间 (UTC)",
    "col_message": "消息",
    "col_status": "状态",
    "col_body": "内容（已脱敏）",
    "col_findings": "命中规则",
    "queue_empty": "没有符合筛选条件的消息。",
    "next_page": "下一页",
    "first_page": "第一页",
    "open": "查看",
    "message_title": "消息",
    "recipient": "收件人",
    "created": "创建时间",
    "segments": "条数",
    "masked_body": "将发送的内容（个人信息已脱敏）",
    "findings": "命中规则",
    "rule": "规则",
    "description": "说明",
    "action": "处理",
    "kind": "类型",
    "whole_message": "整条消息",
    "no_findings": "没有命中规则。",
    "decision": "审核决定",
    "comment": "审核意见（必填）",
    "comment_placeholder": "批准或驳回的理由",
    "approve": "批准并发送",
    "reject": "驳回",
    "confirm_approve": "确认批准？消息将按正常流程发送。",
    "confirm_reject": "确认驳回？该消息将不会发送。",
    "read_only_blocked": "该消息已被策略拦截，仅供查看。",
    "read_only_done": "该消息已不在待审状态，仅供查看。",
    "reveal_title": "查看原文",
    "reveal_warning": "查看原文将显示原始内容和手机号码。"
    "此操作将连同您的姓名和理由记录在审计日志中。",
    "reason": "理由（必填）",
    "reveal": "查看原文（将被记录）",
    "revealed_title": "原文（仅向您显示）",
    "revealed_note": "仅显示一次，本页不会被缓存；请勿复制到其他地方。",
    "revealed_to": "手机号码",
    "revealed_text": "原始内容",
    "done_approved": "已批准，消息将按正常流程发送。",
    "done_rejected": "已驳回，该消息不会发送。",
    "back_to_queue": "返回审核队列",
    "summary_title": "统计",
    "summary_period": "最近 {days} 天内被待审或拦截的消息",
    "by_category": "按类别",
    "by_day": "按日",
    "count": "数量",
    "total": "合计",
    "no_data": "此期间没有待审或拦截的消息。",
    "chart_label": "每日待审与拦截消息数",
    "refused_title": "请求被拒绝",
    "csrf_refused": "表单已过期或并非来自本页面，未做任何更改。请返回、刷新页面后重试。",
    "not_found_title": "未找到",
    "not_found": "该消息不存在，或您无权查看。",
    "error_title": "操作未能完成",
    "invalid_input": "请检查表单：必填项为空或内容过长。",
    "invalid_filter": "筛选条件无效。",
    "language": "语言",
    "status_held": "待审核",
    "status_blocked": "已拦截",
    "status_rejected": "已驳回",
    "status_queued": "排队中",
    "status_scheduled": "已排期",
    "status_sending": "发送中",
    "status_sent": "已发送",
    "status_delivered": "已送达",
    "status_undelivered": "未送达",
    "status_failed": "失败",
    "status_expired": "已过期",
    "status_cancelled": "已取消",
    "purpose_verification_code": "验证码",
    "purpose_repayment_reminder": "还款提醒",
    "purpose_overdue_notice": "逾期通知",
    "purpose_service": "服务通知",
    "purpose_marketing": "营销",
    "kind_pii": "个人信息",
    "kind_content": "内容",
    "kind_policy": "策略",
    "action_hold": "待审",
    "action_block": "拦截",
    "action_mask": "脱敏",
    "action_note": "提示",
    "action_append": "追加",
    "cat_violence": "暴力威胁",
    "cat_insult": "侮辱谩骂",
    "cat_impersonation": "冒充公检法",
    "cat_false_legal": "虚构法律后果",
    "cat_legal_action": "法律行动表述",
    "cat_credit_report": "征信表述",
    "cat_exposure": "曝光施压",
    "cat_visit": "上门外访",
    "cat_new_borrowing": "诱导借新还旧",
    "cat_collection_fee": "催收收费",
    "cat_private_channel": "私人渠道",
    "cat_obscene": "色情淫秽",
    "cat_pressure": "施压紧迫",
    "cat_third_party": "向联系人提及债务",
    "cat_unsubscribe": "退订说明",
    "cat_signature": "签名",
    "cat_link": "链接",
    "cat_length": "长度",
    "cat_contact": "联系策略",
    "cat_cn_id": "身份证号",
    "cat_bank_card": "银行卡号",
    "cat_mobile": "手机号码",
    "cat_email": "电子邮箱",
    "cat_us_ssn": "社会安全号",
    "cat_passport": "护照号",
    "cat_person_name": "姓名",
    "cat_": "无类别",
    "series_held": "仍待审",
    "series_blocked": "已拦截",
    "series_rejected": "已驳回",
    "series_approved": "已批准",
}

CATALOG: Final[Mapping[str, Mapping[str, str]]] = {"en": _EN, "zh": _ZH}


class Labels:
    """``t(key)``: the label in the page's language, else in English, else the
    key itself. ``t.of(prefix, value)``: the label of a status, purpose or
    category, else the value as it is (a category no label names)."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in CATALOG else "en"
        self._table = CATALOG[self.lang]

    def __call__(self, key: str, **values: object) -> str:
        text = self._table.get(key) or _EN.get(key) or key
        return text.format(**values) if values else text

    def of(self, prefix: str, value: str) -> str:
        key = f"{prefix}_{value}"
        return self._table.get(key) or _EN.get(key) or value


def requested_language(request: web.Request) -> str | None:
    """``?lang=`` when it names a supported language (to be remembered)."""
    lang = request.query.get("lang")
    return lang if lang in LANGUAGES else None


def pick_language(request: web.Request) -> str:
    chosen = requested_language(request) or request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return str(chosen)
    return from_accept_language(request.headers.get("Accept-Language", ""))


def from_accept_language(header: str) -> str:
    """The first of zh/en in the header's preference order (q-values honoured)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else "en"
