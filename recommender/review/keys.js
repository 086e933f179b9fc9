// The review pages' keyboard: every action without a mouse (the keys are listed on each page).
(function () {
  const rows = Array.from(document.querySelectorAll('[data-nav]'));
  let at = rows.findIndex(r => r.classList.contains('sel'));
  function select(i) {
    if (!rows.length) return;
    at = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle('sel', j === at));
    rows[at].scrollIntoView({block: 'nearest'});
  }
  if (rows.length && at < 0) select(0);
  function current() { return at >= 0 ? rows[at] : null; }
  function submit(row, action, reason) {
    const form = row.querySelector('form.decide');
    if (!form) return;
    form.querySelector('input[name=action]').value = action;
    if (reason !== undefined) form.querySelector('select[name=reason]').value = reason;
    form.submit();
  }
  document.addEventListener('click', function (ev) {
    const button = ev.target.closest('button[data-action]');
    if (!button) return;
    ev.preventDefault();
    const row = button.closest('[data-nav]');
    select(rows.indexOf(row));
    if (button.dataset.action === 'reject' && !row.classList.contains('rejecting')) {
      row.classList.add('rejecting');
      row.querySelector('select[name=reason]').focus();
      return;
    }
    submit(row, button.dataset.action);
  });
  document.addEventListener('keydown', function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const row = current();
    const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
    if (typing) {
      if (ev.key === 'Escape') { document.activeElement.blur(); if (row) row.classList.remove('rejecting'); }
      else if (ev.key === 'Enter' && document.activeElement.name === 'context' && row) { ev.preventDefault(); submit(row, 'accept'); }
      else if (ev.key === 'Enter' && document.activeElement.name === 'reason' && row) { ev.preventDefault(); submit(row, 'reject'); }
      return;
    }
    if (row && row.classList.contains('rejecting')) {
      const reasons = REASONS;
      if (/^[0-4]$/.test(ev.key)) { ev.preventDefault(); submit(row, 'reject', ev.key === '0' ? '' : reasons[+ev.key - 1]); return; }
      if (ev.key === 'Enter') { ev.preventDefault(); submit(row, 'reject'); return; }
      if (ev.key === 'Escape') { row.classList.remove('rejecting'); return; }
    }
    const go = href => { if (href) window.location.href = href; };
    switch (ev.key) {
      case 'j': case 'ArrowDown': ev.preventDefault(); select(at + 1); break;
      case 'k': case 'ArrowUp': ev.preventDefault(); select(at - 1); break;
      case 'Enter': if (row && row.dataset.href) { ev.preventDefault(); go(row.dataset.href); } break;
      case '/': { const f = document.querySelector('form.filters input'); if (f) { ev.preventDefault(); f.focus(); } break; }
      case 'a': if (row) { ev.preventDefault(); submit(row, 'accept'); } break;
      case 'e': if (row) { const c = row.querySelector('input[name=context]'); if (c) { ev.preventDefault(); c.focus(); c.select(); } } break;
      case 'r': if (row) { ev.preventDefault(); row.classList.add('rejecting'); } break;
      case 's': if (row) { ev.preventDefault(); submit(row, 'skip'); } break;
      case 'u': { const u = document.querySelector('form.undo'); if (u) { ev.preventDefault(); u.submit(); } break; }
      case 'n': { const n = document.querySelector('a.next'); if (n) { ev.preventDefault(); go(n.href); } break; }
      case 'q': { const q = document.querySelector('a.home'); if (q) { ev.preventDefault(); go(q.href); } break; }
    }
  });
})();
