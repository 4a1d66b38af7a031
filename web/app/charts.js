// The pictures of an interview: attention and eye contact over time (uPlot), with the spells a
// recruiter looks for shaded, and plain bars for scores and shares. Each picture has its figures
// in text beside it for screen readers.
import uPlot from '/vendor/uplot/uPlot.esm.js';
import { fmt, h } from './dom.js';

const COLOURS = {
  attention: '#1f5fbf',
  eyeContact: '#2e7d32',
  absent: 'rgba(179, 38, 30, 0.18)',
  lookAway: 'rgba(230, 145, 0, 0.22)',
  severalFaces: '#b3261e',
};

/** Eye contact as the share of the last few seconds' frames, so the line reads as a trend. */
const EYE_CONTACT_WINDOW_S = 5;

/** A horizontal bar from 0 to 100 with its value, or "insufficient data". */
export function bar(label, value, note, unit = '') {
  const known = value !== null && value !== undefined;
  const fill = h('span', { class: 'fill' });
  fill.style.width = `${known ? Math.max(0, Math.min(100, value)) : 0}%`;
  return h('div', { class: 'bar-row' },
    h('span', { class: 'bar-label' }, label),
    // A meter needs a value; without one the bar is decoration beside the words.
    known
      ? h('span', {
        class: 'bar-track',
        role: 'meter',
        'aria-label': label,
        'aria-valuemin': 0,
        'aria-valuemax': 100,
        'aria-valuenow': Math.round(value),
        'aria-valuetext': unit ? `${Math.round(value)}${unit}` : `${Math.round(value)} of 100`,
      }, fill)
      : h('span', { class: 'bar-track', 'aria-hidden': 'true' }, fill),
    h('span', { class: 'bar-value' }, known ? `${fmt.score(value)}${unit}` : 'insufficient data'),
    note ? h('span', { class: 'bar-note' }, note) : null);
}

/** The attention chart of an emotion summary, in `container`; its figure carries
 * `data-points` (how many frames it plots). */
export function attentionChart(summary) {
  const points = summary.timeline ?? [];
  const figure = h('figure', { class: 'chart', 'data-points': points.length });
  if (points.length === 0) {
    figure.append(h('p', null, 'No frames were analysed.'));
    return figure;
  }
  const t0 = points[0].timestamp;
  const seconds = (t) => (t - t0) / 1000;
  const xs = points.map((p) => seconds(p.timestamp));
  const attention = points.map((p) => (p.face_present ? p.attention : null));
  const eye = points.map((p, i) => {
    let n = 0;
    let yes = 0;
    for (let j = i; j >= 0 && xs[i] - xs[j] <= EYE_CONTACT_WINDOW_S; j -= 1) {
      n += 1;
      if (points[j].eye_contact) yes += 1;
    }
    return yes / n;
  });
  const several = points.map((p) => (p.face_count > 1 ? 1.02 : null));
  const spells = [
    ...(summary.face_absent_spells ?? []).map((s) => ({ ...s, colour: COLOURS.absent })),
    ...(summary.look_away_spells ?? []).map((s) => ({ ...s, colour: COLOURS.lookAway })),
  ];
  const shade = (u) => {
    const { ctx, bbox } = u;
    ctx.save();
    for (const s of spells) {
      const x0 = u.valToPos(seconds(s.started_at), 'x', true);
      const x1 = u.valToPos(seconds(s.started_at + s.duration_ms), 'x', true);
      ctx.fillStyle = s.colour;
      ctx.fillRect(x0, bbox.top, Math.max(1, x1 - x0), bbox.height);
    }
    ctx.restore();
  };
  const plot = h('div', { class: 'plot' });
  figure.append(plot);
  const width = () => Math.max(280, Math.min(900, plot.clientWidth || figure.parentElement?.clientWidth || 600));
  const chart = new uPlot({
    width: width(),
    height: 240,
    scales: { x: { time: false }, y: { range: [0, 1.05] } },
    axes: [
      { label: 'seconds into the interview' },
      { values: (u, ticks) => ticks.map((v) => `${Math.round(v * 100)}%`) },
    ],
    series: [
      { label: 'second' },
      { label: 'Attention', stroke: COLOURS.attention, width: 2, value: (u, v) => fmt.percent(v) },
      { label: 'Eye contact (5 s)', stroke: COLOURS.eyeContact, width: 2, dash: [6, 4], value: (u, v) => fmt.percent(v) },
      {
        label: 'Several faces',
        stroke: COLOURS.severalFaces,
        paths: () => null,
        points: { show: true, size: 7, fill: COLOURS.severalFaces },
        value: (u, v) => (v ? 'yes' : ''),
      },
    ],
    hooks: { drawClear: [shade] },
  }, [xs, attention, eye, several], plot);
  new ResizeObserver(() => chart.setSize({ width: width(), height: 240 })).observe(figure);
  const absent = summary.face_absent_spells ?? [];
  const away = summary.look_away_spells ?? [];
  const multi = summary.multi_face_frames ?? 0;
  figure.append(
    h('figcaption', null,
      `Attention and eye contact over ${fmt.clock(seconds(points[points.length - 1].timestamp))} (${points.length} frames plotted). `,
      h('span', { class: 'swatch absent' }), ' face out of view ',
      h('span', { class: 'swatch away' }), ' looking away ',
      h('span', { class: 'swatch several' }), ' several faces'),
    h('p', { class: 'chart-text' },
      `Mean attention ${fmt.percent(summary.mean_attention)}; eye contact in ${fmt.percent(summary.eye_contact_ratio)} of frames; `,
      `${absent.length} spell(s) out of view, ${away.length} spell(s) looking away, ${multi} frame(s) with several faces.`));
  return figure;
}

/** The spells as a table: when, and for how long. */
export function spellTable(summary) {
  const t0 = summary.timeline?.[0]?.timestamp ?? summary.first_timestamp;
  const rows = [
    ...(summary.face_absent_spells ?? []).map((s) => ['Face out of view', s]),
    ...(summary.look_away_spells ?? []).map((s) => ['Looking away', s]),
  ].sort((a, b) => a[1].started_at - b[1].started_at);
  if (rows.length === 0) return h('p', null, 'No spells out of view or looking away (of a second or more).');
  return h('table', null,
    h('caption', null, 'Spells of a second or more'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'What'), h('th', { scope: 'col' }, 'From'), h('th', { scope: 'col' }, 'Lasting'))),
    h('tbody', null, rows.map(([what, s]) => h('tr', null,
      h('td', null, what),
      h('td', null, fmt.clock((s.started_at - t0) / 1000)),
      h('td', null, `${(s.duration_ms / 1000).toFixed(1)} s`)))));
}

/** Shares of a whole (the expression distribution) as bars. */
export function distribution(counts) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (!total) return h('p', null, 'No expressions recorded.');
  return h('div', { class: 'bars' },
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => bar(name, (100 * n) / total, `${n} frame(s)`, '%')));
}
