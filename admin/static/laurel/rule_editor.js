/* The rule editor (rules/edit.html): conditions, tiers and table rows added, moved and
   indented; operators and action fields fitted to the chosen fact, kind and type. */
(function () {
  var form = document.getElementById('rule-form');
  function clone(id) { return document.getElementById(id).content.firstElementChild.cloneNode(true); }
  function setDepth(row, depth) {
    depth = Math.max(0, Math.min(depth, 8));
    row.querySelector('.js-depth').value = depth;
    row.style.marginLeft = (depth * 2) + 'rem';
  }
  function fitOps(row) {
    var fact = row.querySelector('.js-fact'), op = row.querySelector('.js-op');
    if (!fact || !op) { return; }
    var opt = fact.options[fact.selectedIndex], type = opt ? opt.dataset.type : '';
    var metric = opt && opt.dataset.group === 'metric';
    Array.from(op.options).forEach(function (o) {
      var fits = o.dataset.fits;
      var ok = !type || !fits || fits === 'any' || (fits === 'text' && type === 'text') ||
        (fits === 'number' && type !== 'text') || (fits === 'metric' && metric && type !== 'text');
      o.hidden = !ok;
    });
    // a ratio (and a top share) is typed as a percentage
    var unit = row.querySelector('.js-unit');
    if (unit) { unit.style.display = (type === 'ratio' || op.value === 'top_share') ? '' : 'none'; }
  }
  function fitTierUnits() {
    var metric = document.getElementById('a_metric'), opt = metric.options[metric.selectedIndex];
    var ratio = opt && opt.dataset.type === 'ratio';
    form.querySelectorAll('.js-tier-unit').forEach(function (el) { el.style.display = ratio ? '' : 'none'; });
  }
  function showNode(row) {
    var node = row.querySelector('.js-node');
    var leaf = node.value === 'leaf';
    row.querySelectorAll('.js-leaf').forEach(function (el) { el.style.display = leaf ? '' : 'none'; });
    row.classList.toggle('is-group', !leaf);
  }
  // Fields that do not apply to the chosen kind and action are hidden and not sent: no
  // value for a plain bonus, no hold outside flags.
  function toggle(el, on) {
    el.style.display = on ? '' : 'none';
    el.querySelectorAll('input, select, textarea').forEach(function (i) { i.disabled = !on; });
  }
  function showAction() {
    var type = document.getElementById('a_type').value, kind = document.getElementById('kind').value;
    form.querySelectorAll('[data-types]').forEach(function (el) {
      var on = el.dataset.types.split(' ').indexOf(type) >= 0;
      if (on && type === 'fixed' && el.dataset.fixedKinds) { on = el.dataset.fixedKinds.split(' ').indexOf(kind) >= 0; }
      toggle(el, on);
    });
    form.querySelectorAll('[data-kinds]').forEach(function (el) {
      if (el.tagName !== 'OPTION') { toggle(el, el.dataset.kinds.split(' ').indexOf(kind) >= 0); }
    });
  }
  // The key is made from the kind and the name until HR types a key of their own.
  var key = document.getElementById('key'), name = document.getElementById('name');
  var keyTyped = form.dataset.new !== '1' || key.value !== '';
  function makeKey() {
    if (keyTyped) { return; }
    var slug = name.value.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
    key.value = slug ? document.getElementById('kind').value + '.' + slug : '';
  }
  key.addEventListener('input', function () { keyTyped = key.value !== ''; });
  name.addEventListener('input', makeKey);
  function fitActions() {
    var kind = document.getElementById('kind').value, select = document.getElementById('a_type');
    Array.from(select.options).forEach(function (o) { o.hidden = o.dataset.kinds.split(' ').indexOf(kind) < 0; });
    if (select.options[select.selectedIndex].hidden) {
      var first = Array.from(select.options).find(function (o) { return !o.hidden; });
      if (first) { select.value = first.value; }
    }
    showAction();
  }
  form.addEventListener('click', function (ev) {
    var btn = ev.target.closest('[data-act]');
    if (!btn) { return; }
    var act = btn.dataset.act;
    var row = btn.closest('.laurel-cond') || btn.closest('.laurel-tier') ||
      (act !== 'add-cond' ? btn.closest('.laurel-trow') : null);
    if (act === 'add-cond') {
      var box = btn.parentElement.querySelector('.js-conds') || btn.previousElementSibling;
      var fresh = clone('tpl-cond');
      fresh.querySelector('.js-owner').value = box.dataset.owner;
      var last = box.lastElementChild;
      if (last) { setDepth(fresh, parseInt(last.querySelector('.js-depth').value, 10) + (last.querySelector('.js-node').value !== 'leaf' ? 1 : 0)); }
      box.appendChild(fresh); fitOps(fresh); showNode(fresh);
    } else if (act === 'add-tier') {
      form.querySelector('.js-tiers').appendChild(clone('tpl-tier'));
      fitTierUnits();
    } else if (act === 'add-trow') {
      var t = clone('tpl-trow'), token = Math.random().toString(16).slice(2, 10);
      t.dataset.token = token;
      t.querySelector('input[name=r_token]').value = token;
      t.querySelector('.js-conds').dataset.owner = token;
      form.querySelector('.js-trows').appendChild(t);
    } else if (act === 'remove') { row.remove(); }
    else if (act === 'up' && row.previousElementSibling) { row.parentNode.insertBefore(row, row.previousElementSibling); }
    else if (act === 'down' && row.nextElementSibling) { row.parentNode.insertBefore(row.nextElementSibling, row); }
    else if (act === 'indent') { setDepth(row, parseInt(row.querySelector('.js-depth').value, 10) + 1); }
    else if (act === 'outdent') { setDepth(row, parseInt(row.querySelector('.js-depth').value, 10) - 1); }
  });
  form.addEventListener('change', function (ev) {
    var row = ev.target.closest('.laurel-cond');
    if (ev.target.classList.contains('js-fact') || ev.target.classList.contains('js-op')) { fitOps(row); }
    if (ev.target.id === 'a_metric') { fitTierUnits(); }
    if (ev.target.classList.contains('js-node')) { showNode(row); }
    if (ev.target.id === 'a_type') { showAction(); }
    if (ev.target.id === 'kind') { fitActions(); makeKey(); }
  });
  form.querySelectorAll('.laurel-cond').forEach(function (row) { fitOps(row); showNode(row); });
  fitActions();
  fitTierUnits();
})();
