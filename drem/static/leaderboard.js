/* The big-screen leaderboard (/events/<id>/leaderboard): renders the live state of
   leaderboard-core.js, marks the top 3, highlights a new or improved entry and scrolls it
   into view (then back to the top), auto-scrolls long lists, shows the live race footer,
   shows a run summary after each run, speaks each lap when asked (speechSynthesis),
   and has switches for track, language, layout and callouts. */
(function () {
  "use strict";
  const B = window.DremBoard;
  const body = document.body;
  const cfg = { event: body.dataset.eventId, track: body.dataset.track, lang: body.dataset.lang,
                layout: body.dataset.layout, scroll: Number(body.dataset.scroll || 40) };
  const $ = (id) => document.getElementById(id);
  const rowsEl = $("lb-rows"), scroller = $("lb-scroll"), raceEl = $("lb-race");
  const HIGHLIGHT_MS = 6000;
  let highlightUntil = 0, highlightTimer = null, lastHighlight = null;
  let pauseUntil = performance.now() + 5000, lastFrame = performance.now(), pos = 0;

  const board = new B.LiveBoard(cfg.event, cfg.track, {
    full: () => { renderHead(); render(null); },
    update: (m) => { render(m.highlight); callout(m); },
    race: () => { renderRace(); watchRuns(); },
    status: (key) => { const el = $("lb-status"); el.dataset.i18n = key; el.textContent = B.t(cfg.lang, key);
                       el.className = "lb-status " + key; },
  });

  /* ---- the run summary: after each run (a race that ends, or leaves the live races when
     it is submitted) the panel shows its result for SUMMARY_MS, read from the server. */
  const SUMMARY_MS = 8000;
  const racing = new Map();  // race id -> status, of races seen running or paused
  const summarised = new Set();
  let summaryTimer = null;

  function watchRuns() {
    const live = new Map(Object.values(board.races).map((r) => [String(r.race_id), r]));
    for (const [id, r] of live) {
      if (r.status === "running" || r.status === "paused") racing.set(id, r.status);
      else if (r.status === "ended" && racing.has(id)) { racing.delete(id); showSummary(id); }
    }
    for (const id of Array.from(racing.keys())) {
      if (!live.has(id)) { racing.delete(id); showSummary(id); }  // submitted (or discarded: 404)
    }
  }

  function showSummary(raceId) {
    if (summarised.has(raceId)) return;
    summarised.add(raceId);
    fetch("/api/events/" + cfg.event + "/races/" + raceId + "/summary").then((r) => r.ok ? r.json() : null)
      .then((s) => { if (s) renderSummary(s); }).catch(() => {});
  }

  function renderSummary(s) {
    $("sum-racer").textContent = s.racer.username;
    $("sum-rank").textContent = s.rank !== null ? s.rank + " / " + s.count : "–";
    const ch = $("sum-change");
    ch.className = s.rank_change > 0 ? "up" : s.rank_change < 0 ? "down" : "";
    ch.textContent = s.rank_change === null ? B.t(cfg.lang, "new_entry")
      : s.rank_change > 0 ? "▲ " + s.rank_change : s.rank_change < 0 ? "▼ " + (-s.rank_change) : "=";
    $("sum-gap").textContent = s.gap_to_leader_ms ? B.fmtGap(s.gap_to_leader_ms) : "–";
    $("sum-best").textContent = B.fmtMs(s.best_lap_ms);
    $("sum-laps").textContent = s.valid_laps + "/" + s.laps;
    $("sum-resets").textContent = String(s.resets);
    const panel = $("lb-summary"); panel.hidden = false; panel.dataset.raceId = s.race_id;
    clearTimeout(summaryTimer);
    summaryTimer = setTimeout(() => { panel.hidden = true; }, SUMMARY_MS);
  }

  /* ---- spoken callouts (opt-in, kept in this browser): each lap in the board's language */
  const calloutBox = $("sel-callouts");
  calloutBox.checked = localStorage.getItem("drem.callouts") === "1";
  calloutBox.addEventListener("change", () => localStorage.setItem("drem.callouts", calloutBox.checked ? "1" : "0"));

  function callout(m) {
    if (!calloutBox.checked || !m.lap || !m.race || !window.speechSynthesis) return;
    const lap = m.lap, r = m.race;
    const secs = (lap.time_ms / 1000).toFixed(3).replace(".", (B.TEXT[cfg.lang] || {})._decimal || ".");
    let text = B.t(cfg.lang, "say_lap", { racer: r.racer ? r.racer.username : "", n: lap.lap_number, time: secs });
    /* a new best: the lap is now the racer's best on this board, and not their first valid lap */
    const e = board.entries.find((x) => x.racer_id === lap.racer_id);
    if (lap.valid && e && e.summary.best_lap_ms === lap.time_ms && e.summary.valid_laps > 1) text += " " + B.t(cfg.lang, "say_best");
    const u = new SpeechSynthesisUtterance(text);
    u.lang = cfg.lang;
    window.speechSynthesis.speak(u);
  }

  function method() { return board.state ? board.state.event.ranking_method : "best_lap"; }

  function renderHead() {
    const st = board.state; if (!st) return;
    $("lb-title").textContent = st.title;
    $("lb-footer").textContent = st.footer || "";
    const ev = st.event, m = ev.ranking_method;
    let sub = m === "best_average" ? B.t(cfg.lang, "avg_of", { n: ev.averaging_window })
      : m === "total_time" ? B.t(cfg.lang, "method_total_time", { n: ev.lap_target })
        : B.t(cfg.lang, "method_best_lap");
    if (String(st.track) === "combined") sub = B.t(cfg.lang, "combined") + " · " + sub;
    else { const tr = st.tracks.find((x) => String(x.id) === String(st.track)); if (tr) sub = tr.name + " · " + sub; }
    $("lb-sub").textContent = sub;
    const th = $("th-value"); th.dataset.i18n = B.valueLabel(m); th.textContent = B.t(cfg.lang, th.dataset.i18n);
  }

  function extraCell(e) {
    const s = e.summary, m = method();
    if (m === "total_time") return (s.laps_completed || 0) + "/" + (board.state.event.lap_target || "?");
    if (m === "best_average") return s.best_lap_ms !== null ? B.fmtMs(s.best_lap_ms) : "";
    return s.valid_laps + "/" + s.total_laps;
  }

  function row(e) {
    const tr = document.createElement("tr");
    tr.dataset.racerId = e.racer_id;
    tr.className = "lb-row" + (e.rank <= 3 && e.ranking_value_ms !== null ? " top top" + e.rank : "");
    const rank = document.createElement("td"); rank.className = "c-rank"; rank.textContent = e.rank;
    const racer = document.createElement("td"); racer.className = "c-racer";
    const f = B.flag(e.country); if (f) racer.appendChild(f);
    const name = document.createElement("span"); name.className = "name"; name.textContent = e.username;
    racer.appendChild(name);
    if (e.summary.raced_by_proxy) {
      const p = document.createElement("span"); p.className = "proxy"; p.title = B.t(cfg.lang, "by_proxy");
      p.textContent = "P"; racer.appendChild(p);
    }
    if (e.summary.disqualified_runs) {  // docs/ranking.md: a disqualified run is a run used, no result
      const d = document.createElement("span"); d.className = "proxy dq";
      d.title = B.t(cfg.lang, "disqualified_runs") + ": " + e.summary.disqualified_runs;
      d.textContent = "DQ"; racer.appendChild(d);
    }
    const value = document.createElement("td"); value.className = "c-value"; value.textContent = B.fmtMs(e.ranking_value_ms);
    // the time penalty inside the value: the best lap's own, else every penalty of the racer's runs
    const penalty = method() === "best_lap" ? e.summary.best_lap_penalty_ms : e.summary.penalty_ms;
    if (penalty && e.ranking_value_ms !== null) {
      const p = document.createElement("span"); p.className = "penalty"; p.title = B.t(cfg.lang, "incl_penalty");
      p.textContent = "+" + B.fmtMs(penalty) + " s"; value.append(" ", p);
    }
    const gap = document.createElement("td"); gap.className = "c-gap"; gap.textContent = B.fmtGap(e.gap_to_leader_ms);
    const extra = document.createElement("td"); extra.className = "c-extra"; extra.textContent = extraCell(e);
    tr.append(rank, racer, value, gap, extra);
    return tr;
  }

  function render(highlight) {
    const entries = board.entries;
    rowsEl.replaceChildren(...entries.map(row));
    $("lb-empty").hidden = entries.length > 0;
    if (highlight !== null && highlight !== undefined) {
      const tr = rowsEl.querySelector('tr[data-racer-id="' + highlight + '"]');
      if (tr) {
        tr.classList.add("hl");
        highlightUntil = performance.now() + HIGHLIGHT_MS;
        tr.scrollIntoView({ block: "center", behavior: "smooth" });
        clearTimeout(highlightTimer);
        highlightTimer = setTimeout(() => {
          rowsEl.querySelectorAll("tr.hl").forEach((x) => x.classList.remove("hl"));
          scroller.scrollTo({ top: 0, behavior: "smooth" });
          pauseUntil = performance.now() + 4000;
        }, HIGHLIGHT_MS);
      }
    } else if (performance.now() < highlightUntil) {
      // keep the highlight across a re-render caused by someone else's update
      const tr = rowsEl.querySelector('tr[data-racer-id="' + lastHighlight + '"]');
      if (tr) tr.classList.add("hl");
    }
    if (highlight !== null && highlight !== undefined) lastHighlight = highlight;
  }

  /* live race footer: racer, time left, current lap, laps */
  function renderRace() {
    const races = board.liveRaces();
    raceEl.hidden = races.length === 0;
    body.classList.toggle("racing", races.length > 0);
    raceEl.replaceChildren(...races.map((r) => {
      const div = document.createElement("div"); div.className = "lb-race-item " + r.status; div.dataset.raceId = r.race_id;
      const who = document.createElement("span"); who.className = "who";
      const f = B.flag(r.racer && r.racer.country_code); if (f) who.appendChild(f);
      const n = document.createElement("span"); n.className = "name"; n.textContent = r.racer ? r.racer.username : "";
      who.appendChild(n);
      if (r.raced_by_proxy) { const p = document.createElement("span"); p.className = "proxy"; p.textContent = "P"; who.appendChild(p); }
      const cell = (key, cls) => {
        const c = document.createElement("span"); c.className = "cell " + cls;
        const l = document.createElement("small"); l.textContent = B.t(cfg.lang, key);
        const v = document.createElement("b"); c.append(l, v); return c;
      };
      const nLaps = r.lap_count || 0;
      const laps = cell("laps", "laps"); laps.querySelector("b").textContent = r.lap_target ? nLaps + "/" + r.lap_target : nLaps;
      div.append(who, cell("time_left", "left"), cell("current_lap", "cur"), laps);
      if (r.status === "paused") { const p = document.createElement("span"); p.className = "state"; p.textContent = B.t(cfg.lang, "paused"); div.append(p); }
      return div;
    }));
    tickRace();
  }

  function tickRace() {
    for (const r of board.liveRaces()) {
      const el = raceEl.querySelector('[data-race-id="' + r.race_id + '"]'); if (!el) continue;
      const c = B.raceClock(r);
      el.querySelector(".left b").textContent = B.fmtClock(c.left);
      el.querySelector(".cur b").textContent = B.fmtMs(Math.floor(c.currentLap / 100) * 100).replace(/\d\d$/, "");
    }
  }
  setInterval(tickRace, 100);

  /* auto-scroll long lists: down slowly, pause at the bottom, back to the top */
  function autoscroll(now) {
    const dt = Math.min(100, now - lastFrame); lastFrame = now;
    const max = scroller.scrollHeight - scroller.clientHeight;
    if (cfg.scroll > 0 && max > 4 && now > pauseUntil && now > highlightUntil) {
      pos = Math.max(pos, scroller.scrollTop) + cfg.scroll * dt / 1000;
      if (pos >= max) {
        scroller.scrollTop = max; pos = 0;
        pauseUntil = now + 3000;
        setTimeout(() => { scroller.scrollTo({ top: 0, behavior: "smooth" }); pauseUntil = performance.now() + 5000; }, 3000);
      } else scroller.scrollTop = pos;
    } else if (now <= pauseUntil || now <= highlightUntil) pos = scroller.scrollTop;
    requestAnimationFrame(autoscroll);
  }
  requestAnimationFrame(autoscroll);

  /* switches: track, language, layout (kept in the URL, so a reload keeps them) */
  function setParam(k, v) { const u = new URL(location.href); u.searchParams.set(k, v); history.replaceState(null, "", u); }
  $("sel-track").addEventListener("change", (ev) => { setParam("track", ev.target.value); board.setTrack(ev.target.value); });
  $("sel-lang").addEventListener("change", (ev) => {
    cfg.lang = ev.target.value; setParam("lang", cfg.lang); B.translate(document, cfg.lang); renderHead(); render(null); renderRace();
    document.querySelectorAll("#sel-track option[value=combined]").forEach((o) => { o.textContent = B.t(cfg.lang, "combined"); });
  });
  $("sel-layout").addEventListener("change", (ev) => {
    body.classList.remove("layout-" + cfg.layout); cfg.layout = ev.target.value; body.classList.add("layout-" + cfg.layout);
    setParam("layout", cfg.layout);
  });
  /* the switches fade out on the big screen until the mouse moves */
  let idle = null;
  document.addEventListener("mousemove", () => {
    body.classList.add("show-controls"); clearTimeout(idle);
    idle = setTimeout(() => body.classList.remove("show-controls"), 4000);
  });

  B.translate(document, cfg.lang);
  board.connect();
  window.dremLeaderboard = board;  // for tests and the curious
})();
