/* Behaviour for controls that Flask-Admin wrote with inline handlers, which the back office's
   Content-Security-Policy refuses (admin/headers.py); templates/laurel/model/list.html writes
   them with data- attributes instead. Listening on the document, before the click reaches
   the control: a cancelled confirmation stops the form it would send. */
(function () {
  "use strict";
  document.addEventListener("click", function (ev) {
    var target = ev.target;
    if (!target.closest) { return; }
    // Menu toggles, filter entries and the pager's current page go nowhere: Flask-Admin's
    // scripts and Bootstrap do their work, and the browser must not try the "javascript:" URL.
    if (target.closest('a[href^="javascript:"]')) { ev.preventDefault(); }
    var asking = target.closest("[data-confirm]");
    if (asking && !window.confirm(asking.dataset.confirm)) {
      ev.preventDefault();
      ev.stopPropagation();
      return;
    }
    var action = target.closest("[data-action]");
    if (action && window.modelActions) { window.modelActions.execute(action.dataset.action); }
  }, true);
})();

/* A form that came back refused shows its first refused field: on a long page (a run's,
   its adjustment form at the bottom) the page opened at its top, where nothing had
   changed. The field is scrolled to the middle of the window and given the cursor. */
(function () {
  "use strict";
  function showRefused() {
    var field = document.querySelector("form .is-invalid");
    if (!field) { return; }
    var box = field.getBoundingClientRect();
    if (box.top < 0 || box.bottom > window.innerHeight) {
      field.scrollIntoView({block: "center"});
    }
    if (field.focus) { field.focus({preventScroll: true}); }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", showRefused);
  } else {
    showRefused();
  }
})();
