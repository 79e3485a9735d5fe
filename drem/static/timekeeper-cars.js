// Timekeeper console, live cars: the track's cars (its fleets' cars, every car when no fleet
// is assigned to the track) with online state and model-load progress, over Socket.IO
// (/fleet: car_status, command_status). Cars activated or moved into the track's fleets
// appear without a reload. Before Start it shows the race car's load and whether Start
// waits for the model (the server refuses it; the operator may override with a reason).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const root = $("tk");
  const fleetIds = (root.dataset.fleetIds || "").split(",").filter(Boolean).map(Number);
  const initial = JSON.parse($("tk-cars-data").textContent);
  const cars = new Map(initial.cars.map((c) => [c.id, c]));
  const loads = new Map(Object.entries(initial.loads).map(([id, cmd]) => [Number(id), cmd]));
  let race = null;

  function belongs(c) { return !c.revoked && (!fleetIds.length || fleetIds.includes(c.fleet_id)); }
  function pct(cmd) { return Math.round(((cmd && cmd.progress) || 0) * 100); }
  // The words of issue 14's load line: "<model>: <status>[ N%][ (reason)]"
  function loadWords(cmd) {
    if (!cmd) return "no model load sent";
    return (cmd.model || "") + ": " + (cmd.status === "done" ? "loaded" : cmd.status) +
      (cmd.status === "acknowledged" || cmd.status === "sent" ? " " + pct(cmd) + "%" : "") + (cmd.reason ? " (" + cmd.reason + ")" : "");
  }

  function renderList() {
    const body = $("tk-car-list").querySelector("tbody");
    body.innerHTML = "";
    const shown = [...cars.values()].filter(belongs).sort((a, b) => a.hostname.localeCompare(b.hostname) || a.id - b.id);
    shown.forEach((c) => {
      const tr = document.createElement("tr");
      tr.dataset.carId = c.id;
      const name = document.createElement("td"); name.textContent = c.hostname;
      const st = document.createElement("td");
      const badge = document.createElement("span");
      badge.className = "badge tk-online " + (c.online ? "ok" : "bad");
      badge.textContent = c.online ? "online" : "offline";
      st.append(badge, " " + (c.state || "") + (c.battery_pct != null ? " · " + c.battery_pct + "%" : ""));
      const load = document.createElement("td");
      const cmd = loads.get(c.id);
      if (cmd) { const bar = document.createElement("progress"); bar.max = 100; bar.value = pct(cmd); load.append(bar, " "); }
      const words = document.createElement("span"); words.className = "tk-load-text"; words.textContent = loadWords(cmd);
      load.appendChild(words);
      tr.append(name, st, load);
      body.appendChild(tr);
    });
    $("tk-cars-empty").hidden = shown.length > 0;
    // the set-up form's car choice follows the same list, keeping the operator's choice
    const sel = $("tk-car"), keep = sel.value;
    sel.querySelectorAll("option[value]:not([value=''])").forEach((o) => o.remove());
    shown.forEach((c) => {
      const o = document.createElement("option");
      o.value = c.id; o.textContent = c.hostname + " (" + (c.online ? "online" : "offline") + ")";
      sel.appendChild(o);
    });
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }

  // Is the race's model on the race's car? Live from the car's heartbeat and its newest load,
  // else what the server said when it sent the state (state.car_model).
  function modelReady() {
    const car = cars.get(race.car_id), cmd = loads.get(race.car_id);
    if (car && (car.loaded_models || []).some((m) => m.model_id === String(race.model_id))) return true;
    if (cmd && cmd.model_id === race.model_id) return cmd.status === "done";
    return !!(race.car_model && race.car_model.ready);
  }

  function renderRaceCar() {
    const show = !!(race && race.live && race.status === "ready" && race.car_id);
    $("tk-car-load").hidden = !show;
    const hold = show && race.model_id != null && !modelReady();
    $("tk-start-hold").hidden = !hold;
    $("tk-override-reason").hidden = !$("tk-override").checked;
    if (!show) { $("tk-override").checked = false; $("tk-override-reason").value = ""; return; }
    const cmd = loads.get(race.car_id), car = cars.get(race.car_id);
    $("tk-car-load-car").textContent = cmd ? cmd.hostname : (car ? car.hostname : "car");
    $("tk-car-load-bar").value = cmd ? pct(cmd) : 0;
    $("tk-car-load-text").textContent = loadWords(cmd);
  }

  $("tk-override").addEventListener("change", renderRaceCar);
  document.addEventListener("tk:state", (ev) => { race = ev.detail; renderRaceCar(); });

  const socket = io("/fleet", {transports: ["websocket", "polling"]});
  let connectedOnce = false;
  socket.on("connect", async () => {  // after a reconnect, catch up on what was missed meanwhile
    if (!connectedOnce) { connectedOnce = true; return; }
    try {
      const resp = await fetch("/api/fleet/cars");
      if (!resp.ok) return;
      (await resp.json()).cars.forEach((c) => cars.set(c.id, c));
      renderList(); renderRaceCar();
    } catch (e) { /* the next reconnect tries again */ }
  });
  socket.on("car_status", (c) => { cars.set(c.id, c); renderList(); renderRaceCar(); });
  socket.on("command_status", (cmd) => {
    if (cmd.type !== "load_model") return;
    const seen = loads.get(cmd.car_id);
    if (seen && seen.id > cmd.id) return;  // an older load of this car
    loads.set(cmd.car_id, cmd);
    renderList(); renderRaceCar();
  });
  renderList();
})();
