/* The commentator's page (/events/<id>/commentator?track=<id>): the live race, the
   racer's position, projection and gaps, a lap chart (Chart.js), previous runs, next
   racers and the track's top 10. The data comes from /api/events/<id>/commentator; the
   page reads it again within a second of every leaderboard message (the public
   /leaderboard namespace, leaderboard-core.js), so a reload shows the same. */
(function () {
  "use strict";
  const B = window.DremBoard;
  const root = document.getElementById("cm");
  const cfg = { event: root.dataset.eventId, track: root.dataset.track, lang: root.dataset.lang };
  const $ = (id) => document.getElementById(id);
  let data = null, chart = null, race = null;

  const board = new B.LiveBoard(cfg.event, cfg.track, {
    full: () => refresh(), update: () => refresh(), race: () => refresh(),
    status: (key) => { const el = $("cm-status"); el.dataset.i18n = key; el.textContent = B.t(cfg.lang, key);
                       el.className = "cm-status " + key; },
  });

  let loading = false, again = false;

  /* at once (no timer: a browser slows timers of a page in the background), at most one
     read in flight; messages arriving meanwhile cause one more read after it */
  function refresh() {
    if (loading) { again = true; return; }
    load();
  }

  function load() {
    loading = true; again = false;
    fetch("/api/events/" + cfg.event + "/commentator?track=" + encodeURIComponent(cfg.track),
          { headers: { Accept: "application/json" } })
      .then((r) => r.ok ? r.json() : Promise.reject(r.status))
      .then((d) => { data = d; render(); })
      .catch(() => {})
      .finally(() => { loading = false; if (again) refresh(); });
  }

  function cell(tag, text, cls) { const c = document.createElement(tag); c.textContent = text; if (cls) c.className = cls; return c; }

  function render() {
    const r = data.race;
    race = r ? Object.assign({}, r, { _received: performance.now() }) : null;
    $("cm-none").hidden = !!r;
    $("cm-race").hidden = !r;
    renderTop();
    renderNext();
    if (!r) { renderRuns([]); renderChart([]); return; }
    $("cm-name").textContent = r.racer.username;
    $("cm-country").textContent = r.racer.country_code || "";
    const f = B.flag(r.racer.country_code); $("cm-flag").replaceChildren(...(f ? [f] : []));
    const st = $("cm-race-status"); st.textContent = B.t(cfg.lang, r.status === "running" ? "live" : r.status); st.className = "cm-badge " + r.status;
    $("cm-model").textContent = r.model || "–";
    $("cm-car").textContent = r.car || "–";
    $("cm-laps").textContent = r.valid_laps + "/" + r.laps.length + (r.lap_target ? " (" + r.lap_target + ")" : "");
    $("cm-resets").textContent = String(r.resets + (r.current_resets || 0));
    const last = r.laps.length ? r.laps[r.laps.length - 1] : null;
    $("cm-last").textContent = last ? B.fmtMs(last.time_ms) : "–";
    $("cm-last").className = last && !last.valid ? "invalid" : "";
    $("cm-best").textContent = B.fmtMs(r.best_lap_ms);
    const p = data.position || {};
    $("cm-rank").textContent = p.rank ? p.rank + " / " + p.count : "–";
    $("cm-projected").textContent = p.projected_rank ? String(p.projected_rank) : "–";
    $("cm-gap-leader").textContent = p.gap_to_leader_ms === null || p.gap_to_leader_ms === undefined ? "–" : B.fmtGap(p.gap_to_leader_ms) || "0";
    $("cm-gap-next").textContent = p.gap_to_next_ms === null || p.gap_to_next_ms === undefined ? "–" : B.fmtGap(p.gap_to_next_ms) || "0";
    $("cm-gap-leader").dataset.ms = p.gap_to_leader_ms === null || p.gap_to_leader_ms === undefined ? "" : p.gap_to_leader_ms;
    $("cm-gap-next").dataset.ms = p.gap_to_next_ms === null || p.gap_to_next_ms === undefined ? "" : p.gap_to_next_ms;
    $("cm-lap-rows").replaceChildren(...r.laps.slice().reverse().map((l) => {
      const tr = document.createElement("tr"); if (!l.valid) tr.className = "invalid";
      tr.append(cell("td", l.lap_number), cell("td", B.fmtMs(l.time_ms), "num"), cell("td", l.resets),
                cell("td", B.t(cfg.lang, l.valid ? "valid" : "invalid")));
      return tr;
    }));
    renderRuns(data.previous_runs);
    renderChart(r.laps);
    tick();
  }

  function renderTop() {
    const m = data.event.ranking_method, th = $("cm-th-value");
    th.dataset.i18n = B.valueLabel(m); th.textContent = B.t(cfg.lang, th.dataset.i18n);
    const current = data.race ? data.race.racer.id : null;
    $("cm-top").replaceChildren(...data.top.map((e) => {
      const tr = document.createElement("tr"); if (e.racer_id === current) tr.className = "current";
      const who = document.createElement("td"); const f = B.flag(e.country); if (f) who.appendChild(f);
      who.append(e.username);
      tr.append(cell("td", e.rank), who, cell("td", B.fmtMs(e.ranking_value_ms), "num"),
                cell("td", B.fmtGap(e.gap_to_leader_ms), "num"));
      return tr;
    }));
  }

  function renderRuns(runs) {
    $("cm-runs").replaceChildren(...runs.map((x) => {
      const tr = document.createElement("tr");
      tr.append(cell("td", B.fmtDate(x.started_at, cfg.lang)), cell("td", x.track), cell("td", x.valid_laps + "/" + x.laps),
                cell("td", x.resets), cell("td", B.fmtMs(x.best_lap_ms), "num"));
      return tr;
    }));
  }

  function renderNext() {
    $("cm-next").replaceChildren(...data.next_racers.map((n) => {
      const li = document.createElement("li"); const f = B.flag(n.country_code); if (f) li.appendChild(f);
      li.append(n.racer); li.dataset.state = n.state || "";
      if (n.state === "called") li.append(" · " + B.t(cfg.lang, "queue_called_short"));
      return li;
    }));
  }

  /* one point per lap (seconds); invalid laps in red */
  function renderChart(laps) {
    const labels = laps.map((l) => l.lap_number), values = laps.map((l) => l.time_ms / 1000);
    const colours = laps.map((l) => (l.valid ? "#3ecf8e" : "#ff5d5d"));
    if (!window.Chart) return;
    if (!chart) {
      chart = new window.Chart($("cm-chart"), {
        type: "line",
        data: { labels, datasets: [{ label: B.t(cfg.lang, "chart_lap_time"), data: values, borderColor: "#ff9900",
                                     pointBackgroundColor: colours, pointRadius: 5, tension: 0.2 }] },
        options: { animation: false, responsive: true, maintainAspectRatio: false,
                   scales: { x: { title: { display: true, text: B.t(cfg.lang, "lap") }, ticks: { color: "#9aa6bd" } },
                             y: { ticks: { color: "#9aa6bd" } } },
                   plugins: { legend: { labels: { color: "#e8ecf4" } } } },
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets[0].data = values;
      chart.data.datasets[0].pointBackgroundColor = colours;
      chart.data.datasets[0].label = B.t(cfg.lang, "chart_lap_time");
      chart.update();
    }
  }

  function tick() {
    if (!race) return;
    const c = B.raceClock(race);
    $("cm-left").textContent = B.fmtClock(c.left);
    $("cm-current").textContent = race.status === "running" || race.status === "paused"
      ? B.fmtMs(Math.floor(c.currentLap / 100) * 100).replace(/\d\d$/, "") : "–";
  }
  setInterval(tick, 100);

  function setParam(k, v) { const u = new URL(location.href); u.searchParams.set(k, v); history.replaceState(null, "", u); }
  $("cm-track").addEventListener("change", (ev) => {
    cfg.track = ev.target.value; setParam("track", cfg.track); chart && chart.destroy(); chart = null;
    board.setTrack(cfg.track); queueSocket.emit("watch", { track_ids: [Number(cfg.track)] }); load();
  });
  $("cm-lang").addEventListener("change", (ev) => {
    cfg.lang = ev.target.value; setParam("lang", cfg.lang); B.translate(document, cfg.lang);
    if (data) render();
  });

  /* the race queue's changes (public /queue namespace) change the next racers: read again */
  const queueSocket = io("/queue", { transports: ["websocket"], reconnectionDelayMax: 4000 });
  queueSocket.on("connect", () => queueSocket.emit("watch", { track_ids: [Number(cfg.track)] }));
  queueSocket.on("queue_update", (q) => { if (String(q.track_id) === String(cfg.track)) refresh(); });

  B.translate(document, cfg.lang);
  load();
  board.connect();
  window.dremCommentator = { board, data: () => data, chart: () => chart };
})();
