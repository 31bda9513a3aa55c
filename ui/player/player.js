// The epoch player: every chart of Explore's "This epoch" view at every snapshot, scrubbed in
// the browser. Python (ui/player.py) sends the payload once (nnviz/epoch_view.py builds it);
// frame k of a chart is base + frames[k] (nnviz/figures/player.py: apply_diff), drawn with
// Plotly.react. The snapshot shown goes back to Python (Streamlit's component value) when a
// drag ends or playback stops, so the URL, the share links and the other views follow.
// The Streamlit component protocol is spoken directly (postMessage), without a build step.
"use strict";

const PLAY_EVERY_MS = 700;   // one snapshot per 0.7 s while playing
const REPORT_AFTER_MS = 250; // report the snapshot this long after the last slider move

const $ = (id) => document.getElementById(id);
const state = {
  key: null, payload: null, config: {}, pos: 0, drawn: -1, startSeq: null,
  charts: [], texts: [], notes: [], timer: null, reportTimer: null, seq: 0,
  pending: null, drawing: false,
};
// Read by the browser tests and the benchmark: the frame on screen and when it was drawn.
window.nnvizPlayer = { frame: -1, drawnAt: 0, draws: 0 };

function send(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, data), "*");
}

function setHeight() {
  send("streamlit:setFrameHeight", { height: Math.ceil(document.body.scrollHeight) + 4 });
}

function report() {
  clearTimeout(state.reportTimer);
  state.reportTimer = null;
  if (!state.payload) return;
  state.seq += 1;
  send("streamlit:setComponentValue", {
    value: { index: state.payload.snapshots[state.pos], seq: state.seq, key: state.key },
    dataType: "json",
  });
}

function reportSoon() {
  clearTimeout(state.reportTimer);
  state.reportTimer = setTimeout(report, REPORT_AFTER_MS);
}

function frameFigure(chart, k) {
  const base = chart.base;
  const diff = chart.frames[k] || {};
  let data;
  if (diff.data) {
    data = diff.data.map((t) => Object.assign({}, t));
  } else {
    const changes = diff.traces || {};
    data = base.data.map((t, i) => {
      const c = changes[String(i)];
      if (!c) return Object.assign({}, t);
      if (c.__whole__) return Object.assign({}, c.__whole__);
      return Object.assign({}, t, c);
    });
  }
  // Layouts are small: a deep copy keeps plotly's own edits (zoom ranges) off the payload.
  const layout = JSON.parse(JSON.stringify(base.layout));
  for (const k2 of diff.drop || []) delete layout[k2];
  Object.assign(layout, JSON.parse(JSON.stringify(diff.layout || {})));
  layout.autosize = true;
  delete layout.width;
  layout.uirevision = "nnviz"; // a zoom or pan survives scrubbing
  return { data, layout };
}

function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

function build(payload) {
  const root = $("blocks");
  for (const c of state.charts) { try { Plotly.purge(c.div); } catch (e) { /* gone */ } }
  root.innerHTML = "";
  state.charts = []; state.texts = []; state.notes = [];
  for (const block of payload.blocks) {
    if (block.html !== undefined) {
      root.appendChild(el("div", "text", block.html));
    } else if (block.htmls) {
      const div = el("div", "text", block.htmls[0]);
      state.texts.push({ div, htmls: block.htmls });
      root.appendChild(div);
    } else if (block.row) {
      const row = el("div", "row");
      for (const cell of block.row) {
        const box = el("div", "cell");
        const div = el("div", "chart");
        box.appendChild(div);
        if (cell.notes) {
          const notes = el("div", "notes", cell.notes[0]);
          state.notes.push({ div: notes, htmls: cell.notes });
          box.appendChild(notes);
        }
        if (cell.caption && cell.caption.length) {
          box.appendChild(el("div", "caption", cell.caption.map((c) => `<p>${c}</p>`).join("")));
        }
        row.appendChild(box);
        state.charts.push({ div, chart: cell.chart });
      }
      root.appendChild(row);
    }
  }
  const n = payload.labels.length;
  const slider = $("slider");
  slider.max = String(n - 1);
  slider.disabled = n < 2;
  $("play").disabled = n < 2;
  const ticks = $("ticks");
  ticks.innerHTML = "";
  if (n <= 12) for (const lab of payload.labels) ticks.appendChild(el("span", "", lab));
  const total = payload.n_snapshots;
  $("note").textContent = n < total ? word("note", { n, total }) : "";
  $("note").hidden = n >= total;
}

function chartConfig(fig) {
  // The PNG download is named after the run and the chart's title (layer, epoch), not
  // plotly's "newplot.png".
  const t = fig.layout && fig.layout.title;
  const title = (t && (t.text !== undefined ? t.text : t)) || "chart";
  const name = [state.pngPrefix || "nnviz", String(title)].join("_")
    .replace(/<[^>]*>/g, "").replace(/[^A-Za-z0-9._-]+/g, "_").replace(/_+/g, "_")
    .slice(0, 120);
  const image = Object.assign({}, state.config.toImageButtonOptions || {}, { filename: name });
  return Object.assign({}, state.config, { toImageButtonOptions: image });
}

async function draw(k) {
  // Draw frame k; moves that come in meanwhile collapse into the latest one.
  state.pending = k;
  if (state.drawing) return;
  state.drawing = true;
  try {
    while (state.pending !== null) {
      const f = state.pending;
      state.pending = null;
      for (const t of state.texts) t.div.innerHTML = t.htmls[f];
      for (const t of state.notes) t.div.innerHTML = t.htmls[f];
      await Promise.all(state.charts.map((c) => {
        const fig = frameFigure(c.chart, f);
        return Plotly.react(c.div, fig.data, fig.layout, chartConfig(fig));
      }));
      state.drawn = f;
      await new Promise((r) => requestAnimationFrame(() => r()));
      window.nnvizPlayer.frame = f;
      window.nnvizPlayer.key = state.key;
      window.nnvizPlayer.drawnAt = performance.now();
      window.nnvizPlayer.draws += 1;
      document.body.dataset.frame = String(f);
    }
  } catch (err) {
    showError(err);
  } finally {
    state.drawing = false;
  }
  setHeight();
}

function show(k) {
  const n = state.payload.labels.length;
  k = Math.max(0, Math.min(n - 1, k));
  state.pos = k;
  const slider = $("slider");
  slider.value = String(k);
  const label = state.payload.labels[k];
  slider.setAttribute("aria-valuetext", label);
  $("label").textContent = `${label}  (${word("of", { k: k + 1, n })})`;
  $("prev").disabled = k === 0;
  $("next").disabled = k === n - 1;
  draw(k);
}

const ICON = {
  play: '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path d="M8 5v14l11-7z" fill="currentColor"/></svg>',
  pause: '<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true"><path d="M6 5h4v14H6zm8 0h4v14h-4z" fill="currentColor"/></svg>',
};

function setPlaying(on) {
  clearInterval(state.timer);
  state.timer = null;
  // Icons drawn as SVG: they need no emoji font (an empty box on many Linux machines).
  $("play").innerHTML = on ? `${ICON.pause} ` : `${ICON.play} `;
  $("play").append(word(on ? "pause" : "play"));
  $("play").setAttribute("aria-pressed", on ? "true" : "false");
  if (!on) return;
  const n = state.payload.labels.length;
  if (state.pos >= n - 1) show(0);
  state.timer = setInterval(() => {
    if (state.pos >= n - 1) { setPlaying(false); report(); return; }
    show(state.pos + 1);
  }, PLAY_EVERY_MS);
}

function nearestFrame(index) {
  const snaps = state.payload.snapshots;
  let best = 0;
  for (let k = 1; k < snaps.length; k++) {
    if (Math.abs(snaps[k] - index) < Math.abs(snaps[best] - index)) best = k;
  }
  return best;
}

function showError(err) {
  const box = $("error");
  box.hidden = false;
  box.textContent = word("error", { error: err && err.message ? err.message : String(err) });
  setHeight();
}

function loadPlotly(src) {
  if (window.Plotly) return Promise.resolve();
  if (!state.plotlyLoad) {
    state.plotlyLoad = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => resolve();
      s.onerror = () => reject(new Error("plotly.js did not load from " + src));
      document.head.appendChild(s);
    });
  }
  return state.plotlyLoad;
}

function applyTheme(theme) {
  if (!theme) return;
  const root = document.documentElement.style;
  if (theme.textColor) root.setProperty("--text", theme.textColor);
  if (theme.primaryColor) root.setProperty("--accent", theme.primaryColor);
  if (theme.secondaryBackgroundColor) root.setProperty("--panel", theme.secondaryBackgroundColor);
  if (theme.font) root.setProperty("--font", theme.font);
}

// The visible words, in the reader's language: Python sends them as args.labels (ui.player).
const WORDS = {
  play: "Play", pause: "Pause", of: "{k} of {n}", epoch: "Epoch",
  prev: "Previous snapshot", next: "Next snapshot", auto: "Step through the snapshots automatically",
  note: "The player carries {n} of the {total} snapshots, evenly spaced (first and last " +
    "included), so the page stays light; the Tables and All-epochs views reach every one.",
  error: "The charts could not be drawn in this browser ({error}). Switch the view to " +
    "“Tables” or reload the page.",
};

function word(name, fields) {
  return String(WORDS[name]).replace(/\{(\w+)\}/g, (m, f) => (fields && f in fields ? fields[f] : m));
}

function applyWords(labels) {
  if (!labels || labels === state.labels) return;
  state.labels = labels;
  Object.assign(WORDS, labels);
  for (const [id, name] of [["prev", "prev"], ["next", "next"], ["slider", "epoch"]]) {
    $(id).setAttribute("aria-label", word(name));
    if (id !== "slider") $(id).title = word(name);
  }
  $("bar").setAttribute("aria-label", word("epoch"));
  $("play").title = word("auto");
}

async function onRender(msg) {
  const args = msg.args || {};
  applyWords(args.labels);
  applyTheme(msg.theme);
  try {
    await loadPlotly(args.plotly_src);
  } catch (err) {
    showError(err);
    return;
  }
  if (args.payload_key !== state.key) {
    state.key = args.payload_key;
    state.payload = JSON.parse(args.payload);
    state.config = Object.assign({ responsive: true }, args.config || {});
    state.pngPrefix = args.png_prefix || "nnviz";
    state.startSeq = args.start_seq;
    setPlaying(false);
    build(state.payload);
    show(nearestFrame(args.start));
  } else if (args.start_seq !== state.startSeq) {
    // Python moved the player (a link, another view): follow it.
    state.startSeq = args.start_seq;
    setPlaying(false);
    show(nearestFrame(args.start));
  }
  setHeight();
}

window.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg && msg.type === "streamlit:render") onRender(msg);
});

$("slider").addEventListener("input", (e) => {
  setPlaying(false);
  show(Number(e.target.value));
  reportSoon();
});
$("prev").addEventListener("click", () => { setPlaying(false); show(state.pos - 1); reportSoon(); });
$("next").addEventListener("click", () => { setPlaying(false); show(state.pos + 1); reportSoon(); });
$("play").addEventListener("click", () => {
  const on = state.timer === null;
  setPlaying(on);
  if (!on) report();
});
new ResizeObserver(() => setHeight()).observe(document.body);
send("streamlit:componentReady", { apiVersion: 1 });
