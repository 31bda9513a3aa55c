// The epoch player: every chart of Explore's "This epoch" view at every snapshot, scrubbed in
// the browser. Python (ui/player.py) sends the payload once (nnviz/epoch_view.py builds it);
// frame k of a chart is base + frames[k] (nnviz/figures/player.py: apply_diff). A move redraws
// only what changes: a chart that shows frame a gets frame b as one Plotly.update of the trace
// keys and layout leaves that differ between a and b (a chart's first draw and a change of
// traces, of keys or of shapes take Plotly.react; an axis the reader zoomed keeps its range).
// The charts on screen are drawn at once and the others just after, a few per task, so a drag
// never waits for a chart nobody sees (one that scrolls into view is drawn then). The snapshot
// shown goes back to Python (Streamlit's component value) when a drag ends or playback stops,
// so the URL, the share links and the other views follow.
// Each payload (a layer with its options) crosses the wire once: this frame keeps the last
// MAX_KEPT of them with their charts built, Python then sends only the key (ui/player.py), and a
// layer seen before comes back without a rebuild. Python keeps the frame mounted while Explore
// shows another view ("hidden"), so returning to "This epoch" redraws nothing.
// On Explore the frame draws the page's view control itself (args.views): its chart views
// ("This epoch", "All epochs") are payloads this frame holds, so a switch between them is made
// here at once, without a round trip; the view goes back to Python in the component value, and
// the rerun that follows draws a view Python draws (Health, Tables) below this frame, which then
// shows only its control. Once its charts are drawn, the frame asks ahead for the other chart
// view's payload (args.extra brings it), so even a first switch finds its charts drawn.
// A layer switch (Streamlit's Layer selectbox) is made the same way: the frame then asks ahead,
// one at a time, for the shown view's payloads of the layers Python names (views.ahead: the
// next and the previous, every layer of a small model), within AHEAD_BYTES, and predraws them;
// the frame watches that selectbox (views.picker, read-only: the host page is the same origin)
// and shows a pick of a layer it holds at once, before the rerun the pick starts answers, which
// then sends only the payload's key and finds it shown. A newer
// payload of a family (the same view of the same layer: a rebin, another language, a run that
// has grown) makes the frame let the older go as soon as Python names it.
// Compare's side-by-side view plays the same way, its view control drawn by the page
// (views.control false): its layer picks too are shown from payloads fetched ahead.
// The Streamlit component protocol is spoken directly (postMessage), without a build step.
"use strict";

const PLAY_EVERY_MS = 700;   // one snapshot per 0.7 s while playing
const REPORT_AFTER_MS = 250; // report the snapshot this long after the last slider move

const MAX_KEPT = 12;          // payloads kept built in this frame (layers, option sets, views)
const MAX_BYTES = 24e6;       // ... and their JSON at most this long (the shown one always kept)
const AHEAD_BYTES = 12e6;     // layers are asked for ahead only while the frame holds less
const PREDRAW_AFTER_MS = 150; // then the others follow the snapshot shown (predraw)
const REST_TASK_MS = 12;      // off-screen charts drawn per task: until this long has passed
const AFTER_PAINT_MS = 500;   // a view switch is reported once painted, or after this long
const EARLY_MS = 10000;       // a layer pick shown early waits this long for Python to name it
const TOUCHED_MS = 2000;      // ... and is one made this soon after a touch of the selectbox
const ASK_AGAIN_MS = 1000;    // a payload asked for and not come by then is asked for again
const ASKS = 5;               // ... at most this many times in a row
const STALL_MS = 10000;       // an ask no render has heard by then is taken as lost

const $ = (id) => document.getElementById(id);
// A payload the frame holds: {key, payload, root (its charts' DOM, once built), charts, texts,
// notes, drawn (the frame its charts show), width}. Shown: state.entry.
const state = {
  key: null, entry: null, cache: new Map(), config: {}, pos: 0, startSeq: null, hidden: false,
  timer: null, reportTimer: null, seq: 0, pending: null, drawing: false, needed: new Set(),
  views: null, view: null, viewSeq: null, index: null, // the view control; the snapshot shown
  came: new Set(),  // payloads that came (not asked for ahead again once let go: no ping-pong)
  afterPaint: null, afterTimer: null, // a view switch to report once it is painted
  askedAt: new Map(), asks: new Map(), askTimer: null, // asks for payloads
  askSeqs: new Map(), // the report (seq) that asked for each
  heard: null,       // the report Python's last render answers ({instance, seq})
  aheadPending: null,    // the payload asked for ahead: the next render message answers
  instance: Math.random().toString(36).slice(2) + Date.now().toString(36),
};
// Read by the browser tests and the benchmarks: the frame on screen, which payload, and when it
// was last drawn or shown (performance.now() and, comparable across frames, epoch ms). "frame"
// and "drawnEpoch": every chart that is on screen (in the top window's viewport) and every text
// shows that frame, painted; "allFrame" and "allDrawnEpoch": every chart of the payload does
// (-1 while some off-screen chart still shows another frame). "view": the view control's
// choice, as painted; "renders": render messages heard; "answeredView" / "answeredEpoch": the
// view of Python's last rerun, when its render message first said it (a switch made here is
// painted before that); "answeredKey" / "answeredKeyEpoch": the same of the payload shown;
// "earlyPicks": layer picks shown from the page's selectbox before that answer, the last one
// painted at "earlyEpoch".
window.nnvizPlayer = { frame: -1, drawnAt: 0, drawnEpoch: 0, shownEpoch: 0, reportedEpoch: 0,
                       allFrame: -1, allDrawnEpoch: 0, draws: 0, builds: 0, predraws: 0,
                       visible: false, key: null,
                       reacts: 0, parkedReacts: 0, updates: 0, // Plotly calls: full, changes only
                       view: null, renders: 0, answeredView: null, answeredEpoch: 0,
                       answeredKey: null, answeredKeyEpoch: 0, earlyPicks: 0, earlyEpoch: 0 };

function send(type, data) {
  window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, data), "*");
}

const hasControl = () => Boolean(state.views && state.views.control !== false);

function setHeight() {
  // Hidden (Compare's Health, or no payload yet): no height, unless it shows its view control.
  const height = state.hidden && !hasControl() ? 0 : Math.ceil(document.body.scrollHeight) + 4;
  send("streamlit:setFrameHeight", { height });
}

function sendValue(extra) {
  // Python reads: the snapshot shown ("index", for payload "key"), which payloads this frame
  // holds ("have": Python then sends only their key), one it lacks ("need") and the view shown
  // ("view", with a view control; while Python draws the view, its scrubber has the snapshot).
  state.seq += 1;
  const entry = state.hidden ? null : state.entry;
  send("streamlit:setComponentValue", {
    value: Object.assign({
      index: entry ? entry.payload.snapshots[state.pos] : null, seq: state.seq, key: state.key,
      instance: state.instance, have: [...state.cache.keys()], need: null,
    }, state.views ? { view: state.view } : {}, extra),
    dataType: "json",
  });
}

function report() {
  clearTimeout(state.reportTimer);
  state.reportTimer = null;
  if (!state.entry) return;
  sendValue({});
  window.nnvizPlayer.reportedEpoch = performance.timeOrigin + performance.now();
  predrawSoon();
}

function reportSoon() {
  clearTimeout(state.reportTimer);
  state.reportTimer = setTimeout(report, REPORT_AFTER_MS);
}

function asking(key) {
  // Asked for, and its answer may still come (an answer not come in ASK_AGAIN_MS may be lost;
  // after ASKS asks, none more).
  return state.needed.has(key) && ((state.asks.get(key) || 0) >= ASKS
    || performance.now() - (state.askedAt.get(key) || 0) < ASK_AGAIN_MS);
}

function requestPayload(key, again) {
  // Python sent only the key of a payload this frame does not hold (a new frame, or one it
  // let go): ask for it once (again: a view switch to it); the rerun this starts sends it whole.
  // An answer can be lost (a rerun stopped by the next one, or two renders merged into the
  // last): if it has not come within ASK_AGAIN_MS while it is still the one to show (or an
  // earlier ask, ahead of a pick, went unanswered that long), ask again, up to ASKS times.
  if (!again && asking(key)) return;
  ask(key, again, { key, index: null, need: key });
  clearTimeout(state.askTimer);
  state.askTimer = setTimeout(() => {
    if (state.key === key && !state.entry && !state.hidden && !state.cache.has(key)) {
      requestPayload(key, false);
    }
  }, ASK_AGAIN_MS);
}

function ask(key, afresh, value) {
  // Tell Python (``value``) this frame needs payload `key`; its asks counted (afresh: from 1).
  state.needed.add(key);
  state.askedAt.set(key, performance.now());
  state.asks.set(key, afresh ? 1 : (state.asks.get(key) || 0) + 1);
  sendValue(value);
  state.askSeqs.set(key, state.seq);
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
  layout.uirevision = "nnviz"; // plotly keeps what it can of a zoom through a react
  return { data, layout };
}

// A chart's frame k piece by piece, sharing the payload's values (nothing copied).
function frameDiff(chart, k) { return chart.frames[k] || {}; }

function traceAt(chart, k, i) {
  const diff = frameDiff(chart, k);
  if (diff.data) return diff.data[i];
  const c = (diff.traces || {})[String(i)];
  if (!c) return chart.base.data[i];
  return c.__whole__ || Object.assign({}, chart.base.data[i], c);
}

function layoutAt(chart, k) {
  const diff = frameDiff(chart, k);
  const layout = Object.assign({}, chart.base.layout);
  for (const key of diff.drop || []) delete layout[key];
  return Object.assign(layout, diff.layout || {});
}

const isBranch = (v) => v !== null && typeof v === "object" && !Array.isArray(v) &&
  v.bdata === undefined; // a nested attribute object, not a value (array, typed-array spec)
const NOT_DIFFED = new Set(["width", "autosize", "uirevision"]); // set by frameFigure itself
const DRAWN_ALONE = ["shapes", "annotations", "images"];

function leaves(a, b, path, out) {
  // The dotted attribute paths where b differs from a (null: b lacks what a has).
  if (a === b) return out;
  if (isBranch(a) && isBranch(b)) {
    for (const key of Object.keys(b)) leaves(a[key], b[key], `${path}.${key}`, out);
    for (const key of Object.keys(a)) if (!(key in b)) out[`${path}.${key}`] = null;
  } else {
    out[path] = b === undefined ? null : b;
  }
  return out;
}

function frameUpdate(chart, a, b) {
  // What turns frame a of a chart into frame b, as Plotly.update's arguments {style, layout,
  // traces} (style: attribute path -> one value per trace in traces); null where only a full
  // Plotly.react can (another number of traces, a trace that loses a key or changes type).
  const n = (frameDiff(chart, b).data || chart.base.data).length;
  if ((frameDiff(chart, a).data || chart.base.data).length !== n) return null;
  const changed = [];
  for (let i = 0; i < n; i++) {
    const ta = traceAt(chart, a, i), tb = traceAt(chart, b, i);
    if (ta === tb) continue;
    if (ta.type !== tb.type || Object.keys(ta).some((key) => !(key in tb))) return null;
    const paths = {};
    for (const key of Object.keys(tb)) leaves(ta[key], tb[key], key, paths);
    if (Object.keys(paths).length) changed.push({ i, paths });
  }
  const style = {};
  changed.forEach(({ paths }, j) => {
    for (const [path, v] of Object.entries(paths)) {
      (style[path] = style[path] || new Array(changed.length).fill(undefined))[j] = v;
    }
  });
  const la = layoutAt(chart, a), lb = layoutAt(chart, b);
  if (Object.keys(la).some((key) => !(key in lb) && !NOT_DIFFED.has(key))) return null;
  // shapes, annotations, images: a relayout redraws them without the autorange they join
  // (the health timeline's outline of the snapshot shown)
  if (DRAWN_ALONE.some((key) => la[key] !== lb[key])) return null;
  const layout = {};
  for (const key of Object.keys(lb)) {
    if (NOT_DIFFED.has(key) || la[key] === lb[key]) continue;
    // copied: plotly writes into its layout in place (a zoom sets range[0]), not into ours
    for (const [path, v] of Object.entries(leaves(la[key], lb[key], key, {}))) {
      layout[path] = v === null ? null : JSON.parse(JSON.stringify(v));
    }
  }
  return { style, layout, traces: changed.map(({ i }) => i) };
}

function watchZoom(c) {
  // The axes the reader zoomed or panned keep their range through the moves; a double click
  // (autorange) gives them back, and the next move redraws the chart whole.
  c.div.on("plotly_relayout", (ev) => {
    for (const key of Object.keys(ev || {})) {
      const m = /^([xy]axis\d*)\.(range|autorange)/.exec(key);
      if (!m) continue; // a resize's "autosize"
      if (m[2] === "autorange") {
        c.zoomed.delete(m[1]);
        c.whole = true;
      } else {
        c.zoomed.add(m[1]);
      }
    }
  });
}

function drawChart(c, f, parked = false) {
  // Frame f into one chart: the changes since the frame it shows, or a full Plotly.react
  // (counted in reacts, and in parkedReacts too for a chart that is not on screen).
  const up = c.drawn >= 0 && !c.whole ? frameUpdate(c.chart, c.drawn, f) : null;
  c.drawn = f;
  if (up === null) {
    const fig = frameFigure(c.chart, f);
    window.nnvizPlayer.reacts += 1;
    if (parked) window.nnvizPlayer.parkedReacts += 1;
    c.whole = false;
    c.div.style.minHeight = "";
    const done = Plotly.react(c.div, fig.data, fig.layout, chartConfig(fig));
    if (!c.zoomed) {
      c.zoomed = new Set();
      watchZoom(c);
    }
    return done;
  }
  for (const path of Object.keys(up.layout)) {
    if (c.zoomed.has(path.split(".")[0]) && /^\w+\.(range|autorange)/.test(path)) {
      delete up.layout[path];
    }
  }
  const restyle = up.traces.length > 0;
  if (!restyle && !Object.keys(up.layout).length) return null; // this frame looks the same
  window.nnvizPlayer.updates += 1;
  return Plotly.update(c.div, restyle ? up.style : {}, up.layout, restyle ? up.traces : []);
}

function onScreen(div) {
  // Whether any of the chart lies in the top window's viewport: this frame is as tall as its
  // content and the Streamlit page scrolls it. A frame that cannot see its host: on screen.
  const r = div.getBoundingClientRect();
  if (!r.width || !r.height) return false; // a payload not shown
  let top = r.top, height = window.innerHeight;
  try {
    const host = window.frameElement;
    if (!host) return true;
    top += host.getBoundingClientRect().top;
    height = window.parent.innerHeight;
  } catch (e) {
    return true;
  }
  return top < height && top + r.height > 0;
}

// A chart that scrolls into view while it shows another frame is drawn then.
const seen = new IntersectionObserver((items) => {
  const entry = state.entry;
  if (!entry || state.hidden) return;
  for (const item of items) {
    const c = item.isIntersecting && entry.charts.find((x) => x.div === item.target);
    if (c && c.drawn !== entry.drawn && entry.drawn >= 0) {
      try { drawChart(c, entry.drawn); } catch (err) { showError(err); }
    }
  }
});

function lighten(chart) {
  // Tick labels drawn as they fall ("allow") instead of measured one by one to hide those past
  // the chart's edge ("hide past div", a sixth of a redraw); the player's charts keep their
  // labels inside the margins, so nothing shown changes (the browser tests compare).
  const axes = (layout) => {
    for (const key of Object.keys(layout || {})) {
      const ax = layout[key];
      if (/^[xy]axis\d*$/.test(key) && isBranch(ax) && ax.ticklabeloverflow === undefined) {
        layout[key] = Object.assign({}, ax, { ticklabeloverflow: "allow" });
      }
    }
  };
  axes(chart.base.layout);
  for (const diff of chart.frames) if (diff) axes(diff.layout);
}

function el(tag, cls, html) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (html !== undefined) e.innerHTML = html;
  return e;
}

function build(entry) {
  // The payload's blocks as DOM, once per payload; its charts are drawn by draw().
  const root = el("div", "payload");
  entry.root = root;
  entry.charts = []; entry.texts = []; entry.notes = []; entry.drawn = -1;
  for (const block of entry.payload.blocks) {
    if (block.html !== undefined) {
      root.appendChild(el("div", "text", block.html));
    } else if (block.htmls) {
      const div = el("div", "text", block.htmls[0]);
      entry.texts.push({ div, htmls: block.htmls });
      root.appendChild(div);
    } else if (block.row) {
      const row = el("div", "row");
      for (const cell of block.row) {
        const box = el("div", "cell");
        const div = el("div", "chart");
        // its height before it is drawn (plotly's default 450 px), so the page does not jump and
        // the charts below the window are known to be there before a first draw
        div.style.minHeight = `${(cell.chart.base.layout || {}).height || 450}px`;
        box.appendChild(div);
        if (cell.notes) {
          const notes = el("div", "notes", cell.notes[0]);
          entry.notes.push({ div: notes, htmls: cell.notes });
          box.appendChild(notes);
        }
        if (cell.caption && cell.caption.length) {
          box.appendChild(el("div", "caption", cell.caption.map((c) => `<p>${c}</p>`).join("")));
        }
        row.appendChild(box);
        lighten(cell.chart);
        entry.charts.push({ div, chart: cell.chart, drawn: -1, zoomed: null, whole: false });
        seen.observe(div);
      }
      root.appendChild(row);
    }
  }
  $("blocks").appendChild(root);
  window.nnvizPlayer.builds += 1;
  performance.mark("nnviz:built");
}

function park(entry, parked) {
  // A payload not shown stays laid out at the frame's width, out of sight and taking no
  // height, so predraw() can keep its charts at the snapshot shown (display:none would leave
  // plotly nothing to measure).
  if (!entry || !entry.root) return;
  entry.root.hidden = parked; // for assistive technology and the tests' selectors ...
  entry.root.style.cssText = parked ? "display:block;height:0;overflow:hidden;visibility:hidden"
    : ""; // ... while it keeps its layout
}

function release(entry) {
  for (const c of entry.charts || []) {
    seen.unobserve(c.div);
    try { Plotly.purge(c.div); } catch (e) { /* gone */ }
  }
  if (entry.root) entry.root.remove();
  state.cache.delete(entry.key);
}

function heldBytes() {
  let n = 0;
  for (const e of state.cache.values()) n += e.bytes;
  return n;
}

function trim() {
  // Beyond MAX_KEPT payloads or MAX_BYTES, the least recently shown or come are let go (Python
  // resends on need); never the one shown.
  for (const old of [...state.cache.values()]) {
    if (state.cache.size <= MAX_KEPT && heldBytes() <= MAX_BYTES) break;
    if (old !== state.entry) release(old);
  }
}

function keep(entry) {
  // Most recently shown last (trim lets the oldest go first).
  state.cache.delete(entry.key);
  state.cache.set(entry.key, entry);
  trim();
}

function dropReplaced(current) {
  // current: [{key, family}] Python names now. A payload held of such a family under another
  // key is an older one (other bins, language or run length): let go, never shown again.
  const keys = new Map(current.filter((o) => o.key).map((o) => [o.family, o.key]));
  for (const old of [...state.cache.values()]) {
    if (old !== state.entry && keys.has(old.family) && keys.get(old.family) !== old.key) {
      release(old);
    }
  }
}

function setupBar(payload) {
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

function switchTo(entry, k) {
  // Show another payload: its DOM is built once and kept, so a layer seen before comes back
  // without a rebuild (and without a redraw when it still shows snapshot k).
  setPlaying(false);
  const before = state.entry;
  if (before && before !== entry) park(before, true);
  state.entry = entry;
  window.nnvizPlayer.allFrame = -1;
  if (before && before !== entry && before.family === entry.family) release(before);
  state.key = entry.key;
  if (!entry.root) build(entry);
  park(entry, false);
  keep(entry);
  setupBar(entry.payload);
  const width = document.body.clientWidth;
  if (entry.drawn >= 0 && entry.width !== width) {
    for (const c of entry.charts) { try { Plotly.Plots.resize(c.div); } catch (e) { /* */ } }
  }
  show(k);
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

function stamp() {
  // After the next paint: what is on screen, for the tests and benchmarks.
  requestAnimationFrame(() => {
    const p = window.nnvizPlayer;
    const entry = state.entry;
    p.frame = entry && !state.hidden ? entry.drawn : p.frame;
    p.key = state.key;
    p.visible = !state.hidden;
    p.drawnAt = performance.now();
    p.drawnEpoch = performance.timeOrigin + p.drawnAt;
    p.view = state.view;
    if (!state.hidden) p.shownEpoch = p.drawnEpoch;
    document.body.dataset.frame = String(p.frame);
    if (state.afterPaint && !state.hidden) state.afterPaint();
  });
}

const stale = (entry, f) => entry.charts.filter((c) => c.drawn !== f);

async function drawEntry(entry, f) {
  // Frame f of one parked payload's texts and every chart (predraw: none of it is on screen).
  for (const t of entry.texts) t.div.innerHTML = t.htmls[f];
  for (const t of entry.notes) t.div.innerHTML = t.htmls[f];
  entry.drawn = f;
  await Promise.all(stale(entry, f).map((c) => drawChart(c, f, true)));
  entry.width = document.body.clientWidth;
}

function predrawSoon() {
  clearTimeout(state.predrawTimer);
  state.predrawTimer = setTimeout(predraw, PREDRAW_AFTER_MS);
}

async function predraw() {
  // Once the user settles on a snapshot and every chart of it is drawn (drawRest), the other
  // payloads this frame holds (layers seen before) are drawn at it too, one at a time, so
  // switching back to one shows it at once instead of redrawing its charts after the switch.
  // Never while playing or drawing.
  const shown = state.entry;
  if (!shown || state.hidden || state.timer !== null || state.predrawing) return;
  if (state.drawing || state.restTimer) { predrawSoon(); return; }
  state.predrawing = true;
  try {
    const index = shown.payload.snapshots[state.pos];
    for (const entry of [...state.cache.values()]) {
      if (state.entry !== shown || state.timer !== null || state.drawing) break;
      if (entry === shown || !entry.root || state.cache.get(entry.key) !== entry) continue;
      const k = nearestFrame(entry, index);
      if (entry.drawn !== k || stale(entry, k).length) {
        await drawEntry(entry, k);
        window.nnvizPlayer.predraws += 1;
      }
    }
    if (state.entry === shown && state.timer === null) prefetch();
  } catch (err) {
    // a parked payload that cannot be drawn is drawn (and its error shown) when it is shown
  } finally {
    state.predrawing = false;
  }
}

async function draw(k) {
  // Draw frame k of the payload shown, its charts on screen first (then drawRest); moves that
  // come in meanwhile collapse into the latest.
  state.pending = k;
  if (state.drawing) return;
  state.drawing = true;
  try {
    while (state.pending !== null) {
      const f = state.pending;
      const entry = state.entry;
      state.pending = null;
      for (const t of entry.texts) t.div.innerHTML = t.htmls[f];
      for (const t of entry.notes) t.div.innerHTML = t.htmls[f];
      entry.drawn = f;
      window.nnvizPlayer.allFrame = -1;
      await Promise.all(stale(entry, f).filter((c) => onScreen(c.div))
        .map((c) => drawChart(c, f)));
      entry.width = document.body.clientWidth;
      performance.mark("nnviz:drawn");
      await new Promise((r) => requestAnimationFrame(() => r()));
      window.nnvizPlayer.draws += 1;
      if (state.pending === null) stamp();
    }
  } catch (err) {
    showError(err);
  } finally {
    state.drawing = false;
  }
  setHeight();
  drawRest();
}

function drawRest() {
  // The charts off screen, a few per task (REST_TASK_MS), so that a move waits little.
  clearTimeout(state.restTimer);
  state.restTimer = setTimeout(function step() {
    state.restTimer = null;
    const entry = state.entry;
    if (!entry || state.hidden || state.drawing || entry.drawn < 0) return; // draw() calls again
    const f = entry.drawn;
    const todo = stale(entry, f);
    if (!todo.length) {
      requestAnimationFrame(() => requestAnimationFrame(() => {
        if (state.entry !== entry || entry.drawn !== f || stale(entry, f).length) return;
        const p = window.nnvizPlayer;
        p.allFrame = f;
        p.allDrawnEpoch = performance.timeOrigin + performance.now();
        if (state.timer === null) predrawSoon();
      }));
      return;
    }
    const start = performance.now();
    try {
      for (const c of todo) {
        drawChart(c, f);
        if (performance.now() - start > REST_TASK_MS) break;
      }
    } catch (err) {
      showError(err);
      return;
    }
    state.restTimer = setTimeout(step, 0);
  }, 0);
}

function show(k) {
  const labels = state.entry.payload.labels;
  const n = labels.length;
  k = Math.max(0, Math.min(n - 1, k));
  state.pos = k;
  state.index = state.entry.payload.snapshots[k];
  const slider = $("slider");
  slider.value = String(k);
  const label = labels[k];
  slider.setAttribute("aria-valuetext", label);
  $("label").textContent = `${label}  (${word("of", { k: k + 1, n })})`;
  $("prev").disabled = k === 0;
  $("next").disabled = k === n - 1;
  if (state.hidden) return; // drawn when shown again
  const entry = state.entry;
  if (entry.drawn === k && !state.drawing && !stale(entry, k).some((c) => onScreen(c.div))) {
    // drawn already (kept or predrawn): stamped after the paint that shows it, like a draw
    requestAnimationFrame(() => stamp());
    setHeight();
    drawRest();
  } else {
    draw(k);
  }
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
  if (!on || !state.entry) return;
  const n = state.entry.payload.labels.length;
  if (state.pos >= n - 1) show(0);
  state.timer = setInterval(() => {
    if (state.pos >= n - 1) { setPlaying(false); report(); return; }
    show(state.pos + 1);
  }, PLAY_EVERY_MS);
}

function nearestFrame(entry, index) {
  const snaps = entry.payload.snapshots;
  let best = 0;
  for (let k = 1; k < snaps.length; k++) {
    if (Math.abs(snaps[k] - index) < Math.abs(snaps[best] - index)) best = k;
  }
  return best;
}

function setHidden(hidden) {
  // Hidden while Explore shows a view Python draws: the frame stays mounted with every payload
  // it holds (showing only its view control, if it has one), so coming back to a chart view
  // shows the charts at once. Whoever unhides it shows a payload (present).
  if (hidden === state.hidden) return;
  state.hidden = hidden;
  $("player").hidden = hidden;
  if (hidden) {
    setPlaying(false);
    window.nnvizPlayer.visible = false;
    stamp();
  }
  setHeight();
}

function present(key, hidden, start, picked) {
  // Show payload `key` at the snapshot shown (state.index), or none (hidden: the view is one
  // Python draws; picked: the user's switch to it). True when the payload had to be asked for.
  if (hidden) {
    setHidden(true);
    return false;
  }
  const entry = key ? state.cache.get(key) : undefined;
  const wasHidden = state.hidden;
  setHidden(false);
  if (!entry) {
    // Only its key came: this frame let the payload go (or is new). Ask for it.
    park(state.entry, true);
    state.entry = null;
    state.key = key;
    $("note").hidden = false;
    $("note").textContent = word("loading");
    if (key) requestPayload(key, picked);
    return Boolean(key);
  }
  if (entry !== state.entry) {
    switchTo(entry, nearestFrame(entry, state.index === null ? start : state.index));
  } else if (wasHidden) {
    show(nearestFrame(entry, state.index === null ? start : state.index));
  }
  return false;
}

// The view control (args.views): a radio group styled like Streamlit's segmented control.
function chartKey(view) {
  const option = state.views.options.find((o) => o.name === view);
  return option && option.key ? option.key : null;
}

function setupViews(spec) {
  // views.control false: the page draws the view control (Compare); the frame draws none but
  // asks ahead and watches the Layer selectbox all the same.
  if (spec.control === false) {
    state.views = spec;
    return;
  }
  let box = $("views");
  if (!box) {
    box = el("div", "views");
    box.id = "views";
    box.innerHTML = '<div class="views-head"><span id="views-label"></span>' +
      '<button id="views-help-button" class="views-help" type="button" aria-expanded="false" ' +
      'aria-controls="views-help"><svg viewBox="0 0 24 24" width="16" height="16" ' +
      'aria-hidden="true"><circle cx="12" cy="12" r="9.5" fill="none" stroke="currentColor" ' +
      'stroke-width="1.6"/><path d="M9.6 9.4a2.5 2.5 0 1 1 3.4 2.3c-.7.3-1 .8-1 1.5v.4" ' +
      'fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"/>' +
      '<circle cx="12" cy="16.9" r="1" fill="currentColor"/></svg></button></div>' +
      '<div id="views-group" class="segmented" role="radiogroup" ' +
      'aria-labelledby="views-label"></div><p id="views-help" class="caption" hidden></p>';
    document.body.insertBefore(box, $("player"));
    $("views-help-button").addEventListener("click", () => {
      const help = $("views-help");
      help.hidden = !help.hidden;
      $("views-help-button").setAttribute("aria-expanded", String(!help.hidden));
      setHeight();
    });
    $("views-group").addEventListener("keydown", onViewKey);
  }
  const old = state.views;
  state.views = spec;
  if (old && JSON.stringify(old.options.map((o) => [o.name, o.label])) ===
      JSON.stringify(spec.options.map((o) => [o.name, o.label])) && old.label === spec.label &&
      old.help === spec.help) return;
  $("views-label").textContent = spec.label;
  $("views-help-button").setAttribute("aria-label", word("views_help"));
  $("views-help-button").setAttribute("aria-describedby", "views-help");
  $("views-help-button").title = spec.help;
  $("views-help").textContent = spec.help;
  const group = $("views-group");
  group.innerHTML = "";
  for (const option of spec.options) {
    const b = el("button", "segment");
    b.type = "button";
    b.setAttribute("role", "radio");
    b.dataset.view = option.name;
    b.textContent = option.label;
    b.addEventListener("click", () => pickView(option.name));
    group.appendChild(b);
  }
  markView();
}

function markView() {
  if (!$("views-group")) return; // no control drawn here
  for (const b of $("views-group").children) {
    const on = b.dataset.view === state.view;
    b.setAttribute("aria-checked", String(on));
    b.tabIndex = on ? 0 : -1; // one tab stop; the arrow keys move within the group
  }
}

function onViewKey(e) {
  const buttons = [...$("views-group").children];
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
               Home: 0, End: buttons.length - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  const b = buttons[(to + buttons.length) % buttons.length];
  b.focus();
  pickView(b.dataset.view);
}

function pickView(name) {
  // A click on the view control: a chart view the frame holds is shown now (stamped after its
  // paint); then Python hears of it (a view it draws is drawn below by the rerun this starts).
  if (!state.views || name === state.view) return;
  state.view = name;
  markView();
  if (state.afterPaint) state.afterPaint(); // an earlier switch's report: now
  const key = chartKey(name);
  if (present(key, key === null, state.index, true)) return; // asked for its payload
  if (key === null) {
    sendValue({}); // Python draws this view: at once
  } else {
    // shown from a payload held: Python hears of it once the switch is painted (stamp), so the
    // rerun's messages do not compete with that paint; at the latest after AFTER_PAINT_MS
    const go = () => { clearTimeout(state.afterTimer); state.afterPaint = null; sendValue({}); };
    state.afterPaint = go;
    state.afterTimer = setTimeout(go, AFTER_PAINT_MS);
  }
  setHeight();
}

function answerLost(k) {
  // An ask for k whose answer will not come: a render came from a rerun that had heard it (or
  // a later report) without the payload (that rerun was stopped by the next, or its render was
  // merged into the next), or none came at all within STALL_MS. One not answered yet (a rerun
  // still building it, a large payload on its way) is not lost.
  if (!state.needed.has(k) || asking(k)) return false;
  const heard = state.heard;
  return (Boolean(heard) && heard.instance === state.instance
          && heard.seq >= state.askSeqs.get(k))
    || performance.now() - (state.askedAt.get(k) || 0) > STALL_MS;
}

function prefetch() {
  // The charts shown are drawn: ask Python for a chart view's payload this frame lacks, so that
  // a switch to that view finds its charts here, drawn by predraw(); then, one at a time while
  // the frame holds less than AHEAD_BYTES, for the layers' payloads Python named (views.ahead,
  // nearest first), so a layer pick finds its charts drawn too (never again once it came and
  // was let go, while Python names it). Each is asked for once, and again only once its answer
  // was lost (answerLost), up to ASKS times; while one is outstanding this looks again every
  // ASK_AGAIN_MS, so a lost answer is asked for again whatever else happens (or does not).
  clearTimeout(state.prefetchTimer);
  state.prefetchTimer = null;
  const spec = state.views;
  if (!spec || !spec.prefetch || state.hidden || !state.entry || state.timer !== null) return;
  const wanted = (k) => Boolean(k) && !state.cache.has(k)
    && (!state.needed.has(k) || answerLost(k));
  let key = spec.options.map((o) => o.key).find(wanted);
  // one ahead layer at a time: the render that answers calls again (an ask not answered within
  // ASK_AGAIN_MS no longer holds back the others)
  const pending = state.aheadPending;
  const waiting = pending && state.needed.has(pending)
    && performance.now() - (state.askedAt.get(pending) || 0) < ASK_AGAIN_MS;
  if (!key && !waiting && heldBytes() < AHEAD_BYTES) {
    key = (spec.ahead || []).map((o) => o.key).find((k) => wanted(k) && !state.came.has(k));
    if (key) state.aheadPending = key;
  }
  if (key) ask(key, false, { need: key });
  const open = [...state.needed].some((k) => (state.asks.get(k) || 0) < ASKS);
  if (open) state.prefetchTimer = setTimeout(prefetch, ASK_AGAIN_MS + 50);
}

function watchPicker() {
  // Streamlit's Layer selectbox above this frame (its label: views.picker), watched in the host
  // page: once its value is the label of a layer whose payload this frame holds (views.ahead,
  // of the view shown), its list closed, just after the reader's click or key on it, that layer
  // is shown at once (onPicker).
  if (state.pickerWatch !== undefined) return;
  state.pickerWatch = null;
  let main = null;
  try {
    main = window.parent.document.querySelector('[data-testid="stMain"]');
  } catch (e) { /* another origin: the rerun's answer shows the pick */ }
  if (!main) return;
  state.pickerMain = main;
  const doc = main.ownerDocument;
  const touch = (e) => { // the reader's own hand on the selectbox or its list of options
    const t = e.target instanceof doc.defaultView.Element ? e.target : null;
    const list = t && t.closest('[role="listbox"]');
    const box = t && t.closest('[data-testid="stSelectbox"]');
    const label = list ? list.getAttribute("aria-label")
      : box && box.querySelector('input[role="combobox"]') ?
        box.querySelector('input[role="combobox"]').getAttribute("aria-label") : null;
    if (label !== null && state.views && label === state.views.picker) {
      state.pickerTouched = performance.now();
    }
  };
  doc.addEventListener("pointerdown", touch, true);
  doc.addEventListener("keydown", touch, true);
  state.pickerWatch = new MutationObserver(onPicker);
  state.pickerWatch.observe(main, { subtree: true, attributes: true,
                                    attributeFilter: ["value", "aria-expanded"] });
  window.addEventListener("pagehide", () => {
    state.pickerWatch.disconnect();
    doc.removeEventListener("pointerdown", touch, true);
    doc.removeEventListener("keydown", touch, true);
  });
}

function picked() {
  // The option the page's Layer selectbox shows, its list closed (null while choosing).
  const spec = state.views;
  const input = spec && spec.picker && [...state.pickerMain.querySelectorAll(
    'input[role="combobox"]')].find((i) => i.getAttribute("aria-label") === spec.picker);
  return input && input.getAttribute("aria-expanded") !== "true" ? input.value : null;
}

function onPicker() {
  // Only a value the reader chose (not one a rerun set: another run's layers, a link).
  const spec = state.views;
  if (!spec || !spec.picker || state.hidden || !state.entry || state.view !== spec.view) return;
  if (!(performance.now() - (state.pickerTouched || -1e9) < TOUCHED_MS)) return;
  const label = picked();
  const option = label !== null && (spec.ahead || []).find((o) => o.label === label);
  const entry = option && option.key !== state.key ? state.cache.get(option.key) : undefined;
  if (!entry) return; // not held: the rerun sends it
  const p = window.nnvizPlayer;
  p.earlyPicks += 1;
  clearTimeout(state.early && state.early.timer);
  // Until Python's answer names it, a render that still names the layer left keeps this one
  // (a rerun under way when the pick came), for EARLY_MS; then, unless the selectbox still
  // shows the pick, Python's view again.
  const early = { key: option.key, label, from: state.key, said: state.key,
                  until: performance.now() + EARLY_MS };
  early.timer = setTimeout(() => {
    if (state.early !== early) return;
    state.early = null;
    if (picked() !== label) present(early.said, false, state.index, false);
  }, EARLY_MS);
  state.early = early;
  switchTo(entry, nearestFrame(entry, state.index === null ? 0 : state.index));
  requestAnimationFrame(() => { p.earlyEpoch = performance.timeOrigin + performance.now(); });
}

function heardPick(key) {
  // The payload a render message names, after a layer pick shown early (onPicker): that pick
  // while the message still names the layer left, else what it names.
  const early = state.early;
  if (!early) return key;
  early.said = key;
  if (key === early.from && performance.now() < early.until) return early.key;
  clearTimeout(early.timer);
  state.early = null; // answered (or Python shows another payload: follow it)
  return key;
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
    performance.mark("nnviz:plotly-start"); // fetched, compiled, run: "nnviz:plotly-loaded"
    state.plotlyLoad = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => { performance.mark("nnviz:plotly-loaded"); resolve(); };
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
  loading: "Loading the charts…", views_help: "What the views show",
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

function hold(key, family, json) {
  // A payload sent whole: kept (its charts built when first shown, or now when it came ahead
  // of a switch); the same view of a run that has grown (a new snapshot) replaces the older.
  const entry = { key, family, payload: JSON.parse(json), root: null, drawn: -1,
                  bytes: json.length };
  state.cache.set(key, entry);
  state.came.add(key);
  state.needed.delete(key);
  state.askedAt.delete(key);
  state.asks.delete(key);
  state.askSeqs.delete(key);
  performance.mark("nnviz:parsed");
  for (const old of [...state.cache.values()]) {
    if (old.key !== key && old.family === family && old !== state.entry) release(old);
  }
  return entry;
}

async function onRender(msg) {
  performance.mark("nnviz:render");
  window.nnvizPlayer.renderEpoch = performance.timeOrigin + performance.now();
  window.nnvizPlayer.renders += 1;
  const args = msg.args || {};
  state.heard = args.heard || null;
  applyWords(args.labels);
  applyTheme(msg.theme);
  try {
    await loadPlotly(args.plotly_src);
    performance.mark("nnviz:plotly");
  } catch (err) {
    showError(err);
    return;
  }
  state.config = Object.assign({ responsive: true }, args.config || {});
  state.pngPrefix = args.png_prefix || "nnviz";
  let key = args.payload_key;
  if (args.payload && !state.cache.has(key)) hold(key, args.family || key, args.payload);
  const moved = args.start_seq !== state.startSeq;
  state.startSeq = args.start_seq;
  let hidden = Boolean(args.hidden);
  if (args.views) {
    const p = window.nnvizPlayer;
    if (args.views.view !== p.answeredView) {
      p.answeredView = args.views.view;
      p.answeredEpoch = p.renderEpoch;
    }
    setupViews(args.views);
    if (args.views.picker) watchPicker();
    if (args.views.seq !== state.viewSeq) { // Python picked the view (a new frame, a test)
      state.viewSeq = args.views.seq;
      state.view = args.views.view;
      markView();
    }
    const named = [...args.views.options, ...(args.views.ahead || [])];
    dropReplaced(named);
    // the answer to an ask (its payload in extra, or none: then lost, asked again): next
    if (state.aheadPending || state.needed.size) predrawSoon();
    state.aheadPending = null;
    const ahead = new Set(named.map((o) => o.key));
    for (const k of [...state.came]) {
      if (!ahead.has(k) && !state.cache.has(k)) state.came.delete(k);
    }
    for (const k of [...state.needed]) { // asked for, and no longer named: not coming
      if (!ahead.has(k) && k !== state.key) {
        state.needed.delete(k);
        state.askedAt.delete(k);
        state.asks.delete(k);
        state.askSeqs.delete(k);
      }
    }
    for (const [k, json] of Object.entries(args.extra || {})) { // asked for ahead of a switch
      if (state.cache.has(k)) continue;
      const option = named.find((o) => o.key === k);
      const entry = hold(k, option ? option.family : k, json);
      build(entry);
      park(entry, true);
      trim();
      predrawSoon();
    }
    key = heardPick(chartKey(state.view)); // the frame's own picks, heard by Python or not yet
    hidden = key === null;
  }
  if (moved) state.index = args.start; // Python moved the player (a link, another view)
  if (key !== window.nnvizPlayer.answeredKey) { // Python's answer names another payload
    window.nnvizPlayer.answeredKey = key;
    window.nnvizPlayer.answeredKeyEpoch = window.nnvizPlayer.renderEpoch;
  }
  const entry = state.cache.get(key);
  if (!hidden && entry && entry === state.entry && !state.hidden && moved) {
    setPlaying(false); // follow it
    show(nearestFrame(entry, args.start));
  } else if (!present(key, hidden, args.start, false) && hidden && moved && state.entry) {
    show(nearestFrame(state.entry, args.start)); // out of sight: drawn when shown again
  }
  if (moved) state.index = args.start; // its snapshot, not the nearest one a payload carries
  setHeight();
}

window.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg && msg.type === "streamlit:render") onRender(msg);
});

$("slider").addEventListener("input", (e) => {
  if (!state.entry) return;
  setPlaying(false);
  show(Number(e.target.value));
  reportSoon();
});
$("prev").addEventListener("click", () => {
  if (!state.entry) return;
  setPlaying(false); show(state.pos - 1); reportSoon();
});
$("next").addEventListener("click", () => {
  if (!state.entry) return;
  setPlaying(false); show(state.pos + 1); reportSoon();
});
$("play").addEventListener("click", () => {
  if (!state.entry) return;
  const on = state.timer === null;
  setPlaying(on);
  if (!on) report();
});
new ResizeObserver(() => setHeight()).observe(document.body);
// plotly.js (ui/player.py's PLOTLY_SRC) is fetched and run now, not after the first render
// message: a page opened by link or a lesson click draws its first chart sooner.
loadPlotly("plotly-cartesian.min.js").catch(() => { state.plotlyLoad = null; });
send("streamlit:componentReady", { apiVersion: 1 });
