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
