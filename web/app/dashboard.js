// The recruiter's dashboard: the organisation's interviews (filter, sort, pages), a new
// interview with its invitation link, and one interview with its scores, answers, attention
// over time, decision, audit trail, PDF, export and erasure. Routes live in the address's hash.
import { download } from './api.js';
import { attentionChart, bar, distribution, spellTable } from './charts.js';
import { alertBox, announce, field, fmt, h, show } from './dom.js';

const PAGE = 20;
const STATES = { created: 'Invited', in_progress: 'In progress', completed: 'Completed' };
const POLICIES = {
  full: 'Full: attention and expressions',
  engagement: 'Engagement: attention only, no expressions',
  off: 'Off: answers only, no video analysis',
};
const CATEGORIES = ['introduction', 'technical', 'behavioural'];

export function dashboard(root, api, who, onUnauthorized) {
  const route = () => {
    const [, page, id] = location.hash.split('/');
    const fail = (error) => {
      if (error.status === 401) return onUnauthorized();
      return show(root, h('h1', null, 'Something went wrong'), alertBox(error.message),
        h('p', null, h('a', { href: '#/' }, 'Back to the interviews')));
    };
    const view = page === 'new' ? newInterview(root, api)
      : page === 'interviews' && id ? interviewPage(root, api, decodeURIComponent(id), who)
        : listPage(root, api);
    return Promise.resolve(view).catch(fail);
  };
  window.addEventListener('hashchange', route);
  return route();
}

const listQuery = { q: '', state: '', sort: 'created_at', order: 'desc', offset: 0 };

async function listPage(root, api) {
  const params = new URLSearchParams({ ...listQuery, limit: PAGE });
  for (const [k, v] of [...params]) if (v === '') params.delete(k);
  const page = await api.get(`/api/v1/interviews?${params}`);
  const select = (name, options, label) => field(label, h('select', { name },
    Object.entries(options).map(([value, text]) => h('option', { value, selected: listQuery[name] === value }, text))));
  const search = h('input', { type: 'search', name: 'q', value: listQuery.q });
  const filters = h('form', {
    class: 'filters',
    role: 'search',
    onsubmit(event) {
      event.preventDefault();
      const data = new FormData(event.target);
      Object.assign(listQuery, Object.fromEntries(data), { offset: 0 });
      listPage(root, api);
    },
  },
  field('Candidate', search),
  select('state', { '': 'Any', ...STATES }, 'Status'),
  select('sort', { created_at: 'Date', completed_at: 'Completed', score: 'Score', candidate: 'Candidate' }, 'Sort by'),
  select('order', { desc: 'Descending', asc: 'Ascending' }, 'Order'),
  h('button', { type: 'submit' }, 'Apply'));
  const rows = page.interviews.map((i) => h('tr', null,
    h('td', null, h('a', { href: `#/interviews/${encodeURIComponent(i.id)}` }, i.candidate_name || i.user_id)),
    h('td', null, STATES[i.state] ?? i.state),
    h('td', null, fmt.date(i.created_at)),
    h('td', null, `${i.answered} of ${i.questions}`),
    h('td', { class: 'num' }, i.report_ready ? fmt.score(i.overall_score) : '—')));
  const from = page.total ? page.offset + 1 : 0;
  const to = page.offset + page.interviews.length;
  const move = (offset) => () => {
    listQuery.offset = offset;
    listPage(root, api);
  };
  show(root,
    h('h1', null, 'Interviews'),
    h('p', null, h('a', { href: '#/new', class: 'button' }, 'New interview')),
    filters,
    page.interviews.length === 0
      ? h('p', null, 'No interviews match.')
      : h('table', { class: 'list' },
        h('caption', null, `Interviews ${from}-${to} of ${page.total}`),
        h('thead', null, h('tr', null,
          ['Candidate', 'Status', 'Created', 'Answered', 'Score'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows)),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      h('button', { type: 'button', disabled: page.offset === 0, onclick: move(Math.max(0, page.offset - PAGE)) }, 'Previous'),
      h('button', { type: 'button', disabled: to >= page.total, onclick: move(page.offset + PAGE) }, 'Next')));
}

function questionEditor() {
  const rows = h('div', { class: 'questions' });
  const add = () => {
    const n = rows.children.length + 1;
    const row = h('fieldset', { class: 'question-row' },
      h('legend', null, `Question ${n}`),
      field('Category', h('select', { name: 'category' }, CATEGORIES.map((c) => h('option', { value: c }, c)))),
      field('Question', h('textarea', { name: 'text', rows: 2, required: true })),
      field('Expected points', h('textarea', { name: 'points', rows: 3 }), 'One per line: what a good answer covers.'),
      h('button', { type: 'button', class: 'secondary', onclick: () => row.remove() }, `Remove question ${n}`));
    rows.append(row);
    row.querySelector('select').focus();
  };
  const read = () => [...rows.querySelectorAll('fieldset')].map((row) => ({
    category: row.querySelector('[name=category]').value,
    text: row.querySelector('[name=text]').value.trim(),
    expected_points: row.querySelector('[name=points]').value.split('\n').map((p) => p.trim()).filter(Boolean),
  }));
  return { el: h('div', null, rows, h('button', { type: 'button', class: 'secondary', onclick: add }, 'Add a question')), read };
}

function newInterview(root, api) {
  const errors = h('div');
  const editor = questionEditor();
  const custom = h('input', { type: 'radio', name: 'set', value: 'custom', id: 'set-custom' });
  const standard = h('input', { type: 'radio', name: 'set', value: 'default', id: 'set-default', checked: true });
  const editorBox = h('div', { hidden: true }, editor.el);
  const toggle = () => { editorBox.hidden = !custom.checked; };
  custom.addEventListener('change', toggle);
  standard.addEventListener('change', toggle);
  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    const body = {
      candidate_name: data.get('candidate_name').trim(),
      user_id: data.get('user_id').trim(),
      expires_in_hours: Number(data.get('expires_in_hours')),
    };
    if (data.get('policy')) body.policy = data.get('policy');
    if (data.get('job_title').trim()) body.job_title = data.get('job_title').trim();
    if (custom.checked) body.questions = editor.read();
    try {
      const created = await api.post('/api/v1/interviews/start', body);
      invitation(root, created);
    } catch (error) {
      errors.replaceChildren(alertBox(error.message));
    }
  };
  show(root,
    h('h1', null, 'New interview'),
    h('form', { onsubmit: submit, class: 'stack' },
      field('Candidate name', h('input', { name: 'candidate_name', required: true, autocomplete: 'off' })),
      field('Candidate id', h('input', { name: 'user_id', required: true, autocomplete: 'off' }), 'Your reference for this candidate, such as an applicant number.'),
      field('Position', h('input', { name: 'job_title', maxlength: 128, autocomplete: 'off' }), 'The job the candidate applies for; their page shows it.'),
      field('Analysis policy', h('select', { name: 'policy' },
        h('option', { value: '' }, 'The organisation\'s default'),
        Object.entries(POLICIES).map(([v, t]) => h('option', { value: v }, t)))),
      field('Invitation valid for (hours)', h('input', { name: 'expires_in_hours', type: 'number', min: 1, max: 720, value: '72', required: true })),
      h('fieldset', null, h('legend', null, 'Questions'),
        h('div', { class: 'check' }, standard, h('label', { for: 'set-default' }, 'The standard set')),
        h('div', { class: 'check' }, custom, h('label', { for: 'set-custom' }, 'My own questions')),
        editorBox),
      errors,
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Create and get the invitation link'),
        h('a', { href: '#/' }, 'Cancel'))));
}

function invitation(root, created) {
  const link = `${location.origin}${created.invitation.path}`;
  const input = h('input', { readonly: true, value: link, id: 'invitation-link' });
  const copied = h('span', { role: 'status' });
  show(root,
    h('h1', null, 'Interview created'),
    h('p', null, `Send this link to ${created.candidate_name}. It opens this interview only, until ${fmt.date(created.invitation.expires_at)}.`),
    field('Invitation link', input),
    h('div', { class: 'actions' },
      h('button', {
        type: 'button',
        async onclick() {
          input.select();
          try {
            await navigator.clipboard.writeText(link);
            copied.textContent = 'Copied.';
          } catch {
            copied.textContent = 'Select the link and copy it (Ctrl+C).';
          }
        },
      }, 'Copy the link'),
      copied),
    h('p', null, h('a', { href: `#/interviews/${encodeURIComponent(created.id)}` }, 'Open the interview'), ' · ', h('a', { href: '#/' }, 'All interviews')));
}

/** A request that may rightly be refused (no score yet, not an admin): its error, not a throw. */
async function maybe(promise) {
  try {
    return { value: await promise };
  } catch (error) {
    if (error.status === 401) throw error;
    return { error };
  }
}

async function interviewPage(root, api, id, who) {
  const base = `/api/v1/interviews/${encodeURIComponent(id)}`;
  const session = await api.get(base);
  const [score, emotions, decisions, audit] = await Promise.all([
    maybe(api.get(`/api/v1/scores/session/${encodeURIComponent(id)}`)),
    maybe(api.get(`/api/v1/emotions/session/${encodeURIComponent(id)}`)),
    maybe(api.get(`${base}/decision`)),
    maybe(api.get(`/api/v1/audit?interview_id=${encodeURIComponent(id)}&limit=100`)),
  ]);
  const errors = h('div');
  show(root,
    h('p', null, h('a', { href: '#/' }, '← All interviews')),
    h('h1', null, session.candidate_name || session.user_id),
    h('dl', { class: 'facts' },
      h('dt', null, 'Status'), h('dd', null, STATES[session.state] ?? session.state),
      h('dt', null, 'Candidate id'), h('dd', null, session.user_id),
      h('dt', null, 'Position'), h('dd', null, session.job_title || '—'),
      h('dt', null, 'Policy'), h('dd', null, POLICIES[session.policy] ?? session.policy),
      h('dt', null, 'Consent'), h('dd', null, session.consent_state),
      h('dt', null, 'Created'), h('dd', null, fmt.date(session.created_at)),
      h('dt', null, 'Completed'), h('dd', null, fmt.date(session.completed_at)),
      h('dt', null, 'Answered'), h('dd', null, `${session.answers?.length ?? 0} of ${session.total_questions}`)),
    errors,
    actions(root, api, base, session, errors),
    scoreSection(score, session),
    attentionSection(emotions, session),
    answersSection(score, session),
    decisionSection(api, base, decisions, () => interviewPage(root, api, id, who)),
    auditSection(audit));
}

function actions(root, api, base, session, errors) {
  const report = async () => {
    try {
      download(await api.get(`${base}/report?format=pdf`), `interview-${session.id}.pdf`);
      announce('The PDF report is downloading.');
    } catch (error) {
      errors.replaceChildren(alertBox(error.code === 'REPORT_NOT_READY' || error.status === 404
        ? 'The report is not ready yet: it is made once the interview is completed and scored.'
        : error.message));
    }
  };
  const exportData = async () => {
    try {
      const data = await api.get(`${base}/export`);
      download(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }), `interview-${session.id}.json`);
    } catch (error) {
      errors.replaceChildren(alertBox(error.message));
    }
  };
  const dialog = h('dialog', { 'aria-labelledby': 'erase-title' },
    h('h2', { id: 'erase-title' }, 'Erase this interview?'),
    h('p', null, `Everything stored about ${session.candidate_name || session.user_id}'s interview (answers, video analysis, scores, reports) is deleted in every service. Only a receipt with counts is kept. This cannot be undone.`),
    h('form', { method: 'dialog', class: 'actions' },
      h('button', { value: 'erase', class: 'danger' }, 'Erase everything'),
      h('button', { value: 'cancel', class: 'secondary', autofocus: true }, 'Cancel')));
  dialog.addEventListener('close', async () => {
    if (dialog.returnValue !== 'erase') return;
    try {
      const receipt = await api.delete(base);
      show(root,
        h('h1', null, 'Interview erased'),
        h('p', null, `Requested by ${receipt.requested_by} at ${fmt.date(receipt.requested_at)}. ${receipt.pending.length ? `Still erasing in: ${receipt.pending.join(', ')}.` : 'Every service has reported.'}`),
        h('p', null, h('a', { href: '#/' }, 'All interviews')));
    } catch (error) {
      errors.replaceChildren(alertBox(error.message));
    }
  });
  return h('div', { class: 'actions' },
    h('button', { type: 'button', onclick: report, disabled: !session.report_ready }, 'Download the PDF report'),
    h('button', { type: 'button', class: 'secondary', onclick: exportData }, 'Export as JSON'),
    h('button', { type: 'button', class: 'danger', onclick: () => dialog.showModal() }, 'Erase…'),
    dialog);
}

function scoreSection(score, session) {
  const heading = h('h2', null, 'Score');
  if (score.error) {
    return h('section', { 'aria-label': 'Score' }, heading,
      h('p', null, session.state === 'completed' ? 'The score is being calculated.' : 'Scored once the interview is completed.'));
  }
  const s = score.value;
  return h('section', { 'aria-label': 'Score' }, heading,
    h('p', { class: 'overall' }, 'Overall ', h('strong', { 'data-score': s.overall_score }, `${fmt.score(s.overall_score)} / 100`)),
    h('p', null, s.feedback),
    h('div', { class: 'bars' }, s.components.map((c) => bar(
      c.name, c.sufficient_data ? c.score : null, `weight ${Math.round(c.weight * 100)}%: ${c.reason}`))),
    s.insights?.length ? h('ul', null, s.insights.map((i) => h('li', null, i.description))) : null,
    h('p', { class: 'note' }, 'Scores are advisory: they summarise the answers and the video analysis, and a person makes the decision.'));
}

function attentionSection(emotions, session) {
  const heading = h('h2', null, 'Attention over time');
  if (session.policy === 'off') {
    return h('section', { 'aria-label': 'Attention' }, heading, h('p', null, 'The video was not analysed (policy off).'));
  }
  if (emotions.error) {
    return h('section', { 'aria-label': 'Attention' }, heading, h('p', null, 'No video analysis yet.'));
  }
  const e = emotions.value;
  return h('section', { 'aria-label': 'Attention' }, heading,
    attentionChart(e),
    h('p', null, `Blinks: ${e.blinks.count} (${e.blinks.rate_per_minute.toFixed(1)} per minute); eyes closed or looking down for over half a second: ${e.blinks.long_closures} times; eyes closed ${fmt.percent(e.blinks.perclos)} of the time.`),
    spellTable(e),
    session.policy === 'full'
      ? [h('h3', null, 'Expressions'), distribution(e.emotion_counts),
        h('p', { class: 'note' }, 'Expression reading is uncertain and differs across people; it never decides anything alone.')]
      : null);
}

function answersSection(score, session) {
  const analysed = new Map((score.value?.answers ?? []).map((a) => [a.question_id, a]));
  const answers = session.answers ?? [];
  return h('section', { 'aria-label': 'Answers' }, h('h2', null, 'Answers'),
    answers.length === 0 ? h('p', null, 'No answers yet.') : answers.map((a, n) => {
      const scored = analysed.get(a.question_id);
      const analysis = scored?.analysis ?? a.analysis;
      return h('article', { class: 'answer' },
        h('h3', null, `${n + 1}. ${scored?.question ?? a.question_id}`),
        h('blockquote', null, a.transcript),
        analysis ? [
          h('div', { class: 'bars' },
            bar('relevance', analysis.relevance), bar('depth', analysis.depth), bar('clarity', analysis.clarity)),
          h('p', null, analysis.feedback),
          analysis.evidence?.length ? h('table', null,
            h('caption', null, 'Expected points and the sentence that covers each'),
            h('thead', null, h('tr', null, ['Point', 'Status', 'Sentence', 'Similarity'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', null, analysis.evidence.map((ev) => h('tr', null,
              h('td', null, ev.point), h('td', null, ev.status), h('td', null, ev.sentence || '—'),
              h('td', { class: 'num' }, ev.similarity?.toFixed(2) ?? '—'))))) : null,
        ] : h('p', null, 'Not analysed.'));
    }));
}

function decisionSection(api, base, decisions, reload) {
  const list = decisions.value?.decisions ?? [];
  const errors = h('div');
  const submit = async (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    try {
      await api.post(`${base}/decision`, { decision: data.get('decision'), reason: data.get('reason').trim() });
      announce('Decision recorded.');
      reload();
    } catch (error) {
      errors.replaceChildren(alertBox(error.message));
    }
  };
  return h('section', { 'aria-label': 'Decision' }, h('h2', null, 'Decision'),
    list.length ? h('ul', null, list.map((d) => h('li', null,
      h('strong', null, d.decision), ` by ${d.decided_by} (${d.decided_role}), ${fmt.date(d.decided_at)}: ${d.reason}`)))
      : h('p', null, 'No decision yet.'),
    h('form', { onsubmit: submit, class: 'stack' },
      field('Decision', h('select', { name: 'decision' },
        h('option', { value: 'advance' }, 'Advance'), h('option', { value: 'hold' }, 'Hold'), h('option', { value: 'reject' }, 'Reject'))),
      field('Reason', h('textarea', { name: 'reason', rows: 2, required: true })),
      errors,
      h('button', { type: 'submit' }, 'Record the decision')));
}

function auditSection(audit) {
  const heading = h('h2', null, 'Who viewed or changed it');
  if (audit.error) {
    return h('section', { 'aria-label': 'Audit trail' }, heading,
      h('p', null, audit.error.status === 403 ? 'Only administrators read the audit trail.' : audit.error.message));
  }
  const entries = audit.value.entries ?? [];
  return h('section', { 'aria-label': 'Audit trail' }, heading,
    entries.length === 0 ? h('p', null, 'Nothing recorded.') : h('table', null,
      h('caption', null, 'Audit trail, oldest first'),
      h('thead', null, h('tr', null, ['When', 'Who', 'What', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, entries.map((e) => h('tr', null,
        h('td', null, fmt.date(e.at)), h('td', null, `${e.actor.subject} (${e.actor.role})`),
        h('td', null, e.action.replace(/_/g, ' ')), h('td', null, e.detail))))));
}
