/* The public statistics page (/statistics, /events/<id>/statistics): numbers, laps per
   hour and racers per country as Chart.js plots, the fastest laps. Data from
   /api/events/statistics or /api/events/<id>/statistics. */
(function () {
  "use strict";
  const B = window.DremBoard;
  const root = document.getElementById("st");
  const cfg = { event: root.dataset.eventId, lang: root.dataset.lang };
  const $ = (id) => document.getElementById(id);
  let data = null;
  const charts = {};

  function num(v, decimals) {
    return v === null || v === undefined ? "–" : Number(v).toLocaleString(cfg.lang, { maximumFractionDigits: decimals || 0 });
  }

  function plot(id, type, labels, values, label) {
    if (!window.Chart) return;
    if (charts[id]) charts[id].destroy();
    charts[id] = new window.Chart($(id), {
      type, data: { labels, datasets: [{ label, data: values, backgroundColor: "#ff9900", borderColor: "#ff9900", maxBarThickness: 60 }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 scales: { x: { ticks: { color: "#9aa6bd" } }, y: { beginAtZero: true, ticks: { color: "#9aa6bd", precision: 0 } } },
                 plugins: { legend: { display: false } } },
    });
  }

  function render() {
    if ($("st-events")) $("st-events").textContent = num(data.events);
    $("st-racers").textContent = num(data.racers);
    $("st-countries").textContent = num(Object.keys(data.countries).filter((c) => c).length);
    $("st-runs").textContent = num(data.runs);
    $("st-laps").textContent = num(data.laps);
    $("st-rpl").textContent = num(data.resets_per_lap, 2);
    const hours = data.laps_per_hour;
    plot("st-hours", "bar", hours.map((h) => new Date(h.hour).toLocaleString(cfg.lang, { dateStyle: "short", timeStyle: "short" })),
         hours.map((h) => h.laps), B.t(cfg.lang, "laps_per_hour"));
    const cc = Object.keys(data.countries);
    plot("st-country-chart", "bar", cc.map((c) => c || "–"), cc.map((c) => data.countries[c]), B.t(cfg.lang, "racers"));
    $("st-fastest").replaceChildren(...data.fastest_laps.map((l, i) => {
      const tr = document.createElement("tr");
      const who = document.createElement("td"); const f = B.flag(l.country_code); if (f) who.appendChild(f); who.append(l.username);
      const td = (t, c) => { const x = document.createElement("td"); x.textContent = t; if (c) x.className = c; return x; };
      tr.append(td(i + 1), who, td(cfg.event ? l.track : l.event + " · " + l.track), td(B.fmtMs(l.time_ms), "num"));
      return tr;
    }));
  }

  $("st-lang").addEventListener("change", (ev) => {
    cfg.lang = ev.target.value;
    const u = new URL(location.href); u.searchParams.set("lang", cfg.lang); history.replaceState(null, "", u);
    B.translate(document, cfg.lang); if (data) render();
  });

  B.translate(document, cfg.lang);
  fetch(cfg.event ? "/api/events/" + cfg.event + "/statistics" : "/api/events/statistics")
    .then((r) => r.json()).then((d) => { data = d; render(); window.dremStatistics = d; });
})();
