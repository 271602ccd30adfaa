// Histograms over time as a heatmap on a canvas (Explore, pages/explore.js): time across
// (a column per step of the view), buckets up (a row per bucket value, neighbours merged
// into at most MAX_ROWS rows), colour = count. Canvas 2D only: bucket names and times are
// drawn as canvas text, never parsed as markup, and nothing inline breaks the CSP.

export const MAX_ROWS = 48;
// A sequential ramp (light to dark), so that more is darker in colour and in grey.
const RAMP = [[255, 247, 236], [253, 212, 158], [252, 141, 89], [215, 48, 31], [127, 0, 0]];
const MARGIN = {left: 76, right: 12, top: 6, bottom: 24};

// [[ts, {bucket: count}], ...] within [from, to] summed per column of `step` seconds:
// {times: column starts, rows: row names, cells: counts by column then row, max, step,
// width: the seconds a column spans}.
export function binHistograms(points, from, to, step) {
  const columns = new Map();
  const buckets = new Set();
  for (const [ts, histogram] of points) {
    if (ts < from || ts > to) continue;
    const start = Math.floor(ts / step) * step;
    let column = columns.get(start);
    if (!column) columns.set(start, column = new Map());
    for (const [bucket, count] of Object.entries(histogram)) {
      buckets.add(bucket);
      column.set(bucket, (column.get(bucket) || 0) + Number(count));
    }
  }
  const names = [...buckets];
  const numeric = names.every((b) => b.trim() !== "" && Number.isFinite(Number(b)));
  names.sort(numeric ? (a, b) => Number(a) - Number(b) : undefined);
  const per = Math.max(1, Math.ceil(names.length / MAX_ROWS));  // buckets a row
  const rowOf = new Map(names.map((b, i) => [b, Math.floor(i / per)]));
  const rows = [];
  for (let i = 0; i < names.length; i += per) {
    const last = names[Math.min(names.length, i + per) - 1];
    rows.push(last === names[i] ? names[i] : `${names[i]}–${last}`);
  }
  const times = [...columns.keys()].sort((a, b) => a - b);
  // A column spans the histograms' usual interval when they are sparser than the step
  // (one every 5 min drawn at 5 s), so the map has no hairlines; a longer gap shows.
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  const width = Math.max(step, gaps.length ? gaps[gaps.length >> 1] : step);
  const cells = new Float64Array(times.length * rows.length);
  let max = 0;
  times.forEach((t, c) => {
    for (const [bucket, count] of columns.get(t)) {
      const at = c * rows.length + rowOf.get(bucket);
      cells[at] += count;
      max = Math.max(max, cells[at]);
    }
  });
  return {times, rows, cells, max, step, width};
}

function colour(count, max) {
  // Logarithmic: a bucket's few outliers stay visible beside its thousands.
  const x = (Math.log1p(count) / Math.log1p(max)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x));
  const mix = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * (x - i)));
  return `rgb(${mix.join(",")})`;
}

// Local time, as uPlot's axes show it.
function timeLabel(seconds, span) {
  const d = new Date(seconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  const time = `${two(d.getHours())}:${two(d.getMinutes())}`;
  return span > 2 * 86400 ? `${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}` : time;
}

// Draw `binned` on `canvas` (`width` px wide) over [from, to], the plot `edges` px from
// the left and right (those of the charts above it, so times line up), by default
// MARGIN's; returns how many cells were painted and a function from a point on the
// canvas to the cell under it.
export function drawHeatmap(canvas, binned, from, to, width, edges = null) {
  const {times, rows, cells, max, width: seconds} = binned;
  const left = Math.max(MARGIN.left, edges?.left ?? 0);
  const right = Math.max(4, edges?.right ?? MARGIN.right);
  const rowPx = Math.max(4, Math.min(18, Math.floor(240 / Math.max(1, rows.length))));
  const height = MARGIN.top + rows.length * rowPx + MARGIN.bottom;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const plotWidth = width - left - right;
  const span = Math.max(1, to - from);
  const x = (t) => left + ((t - from) / span) * plotWidth;
  const columnPx = Math.max(1, (plotWidth * seconds) / span);
  const y = (row) => MARGIN.top + (rows.length - 1 - row) * rowPx;  // the first bucket lowest
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.fillStyle = "#f3f3f3";
  ctx.fillRect(left, MARGIN.top, plotWidth, rows.length * rowPx);
  let painted = 0;
  times.forEach((t, c) => {
    for (let r = 0; r < rows.length; r++) {
      const count = cells[c * rows.length + r];
      if (!count) continue;
      ctx.fillStyle = colour(count, max);
      ctx.fillRect(x(t), y(r), Math.min(Math.ceil(columnPx), width - right - x(t)), rowPx);
      painted++;
    }
  });
  ctx.fillStyle = "#333";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const every = Math.max(1, Math.ceil(12 / rowPx));  // a label every 12 px at most
  for (let r = 0; r < rows.length; r += every) {
    ctx.fillText(rows[r].length > 12 ? rows[r].slice(0, 11) + "…" : rows[r], left - 4,
                 y(r) + rowPx / 2);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let i = 0; i <= 4; i++) {
    const t = from + (span * i) / 4;
    ctx.fillText(timeLabel(t, span), Math.min(width - 30, Math.max(left + 20, x(t))),
                 height - MARGIN.bottom + 6);
  }
  const cellAt = (px, py) => {
    const row = rows.length - 1 - Math.floor((py - MARGIN.top) / rowPx);
    const t = from + ((px - left) / plotWidth) * span;
    const c = times.findIndex((start) => t >= start && t < start + seconds);
    if (row < 0 || row >= rows.length || c < 0) return null;
    return {time: times[c], bucket: rows[row], count: cells[c * rows.length + row]};
  };
  return {painted, cellAt};
}
