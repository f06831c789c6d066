// lendsms review page: small progressive enhancements. The page works without it.
"use strict";

(function () {
  // Ask before an approve or reject is sent (the button carries the question).
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // A decision or reveal needs its text: keep the buttons off until it is there.
  document.querySelectorAll("form[data-needs-text]").forEach(function (form) {
    var field = form.querySelector("textarea[required], input[required]");
    var buttons = form.querySelectorAll("button[type=submit]");
    if (!field) {
      return;
    }
    var update = function () {
      var empty = field.value.trim() === "";
      buttons.forEach(function (b) { b.disabled = empty; });
    };
    field.addEventListener("input", update);
    update();
  });

  // Queue: j / k move between messages, Enter opens the focused one.
  var links = Array.prototype.slice.call(document.querySelectorAll("a.row-link"));
  if (links.length === 0) {
    return;
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey ||
        (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    var at = links.indexOf(document.activeElement);
    if (event.key === "j") {
      links[Math.min(at + 1, links.length - 1)].focus();
    } else if (event.key === "k") {
      links[Math.max(at - 1, 0)].focus();
    }
  });
})();
