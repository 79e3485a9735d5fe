// Cars page: live car status and command status over Socket.IO; command buttons post to the API.
(function () {
  "use strict";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const text = (el, value) => { if (el) el.textContent = value == null ? "" : value; };

  function carRow(c) {
    const tr = document.querySelector('#cars-table tr[data-car-id="' + c.id + '"]');
    if (!tr) { window.location.reload(); return; }
    const badge = tr.querySelector(".online");
    badge.innerHTML = '<span class="badge ' + (c.online ? "ok" : "bad") + '"></span>';
    text(badge.firstChild, c.online ? "online" : (c.revoked ? "revoked" : "offline"));
    text(tr.querySelector(".ip"), (c.ip || "") + " " + (c.software_version || ""));
    text(tr.querySelector(".state"), (c.state || "") + (c.error ? " (" + c.error + ")" : ""));
    const runs = document.createElement("span");
    runs.className = "muted runs";
    runs.textContent = (c.model_formats ? "runs " + c.model_formats.join(", ") : "") + (c.fps != null ? " · " + c.fps + " fps" : "");
    tr.querySelector(".state").append(document.createElement("br"), runs);
    text(tr.querySelector(".battery"), c.battery_pct == null ? "" : c.battery_pct + "%");
    text(tr.querySelector(".speed"), c.max_speed_mps);
    text(tr.querySelector(".light"), c.tail_light);
    text(tr.querySelector(".seen"), c.last_seen_at ? c.last_seen_at.substring(11, 19) : "");
    const models = tr.querySelector(".models");
    models.innerHTML = "";
    (c.loaded_models || []).forEach((m) => {
      const s = document.createElement("span");
      s.className = "badge" + (m.model_id === c.model_in_use ? " ok" : "");
      s.textContent = m.name || m.model_id;
      models.appendChild(s); models.appendChild(document.createTextNode(" "));
    });
  }

  // Per-car load progress (the car's newest load_model command) in the "Load" column.
  function loadCell(c) {
    if (c.type !== "load_model") return;
    const tr = document.querySelector('#cars-table tr[data-car-id="' + c.car_id + '"]');
    const cell = tr && tr.querySelector(".load");
    if (!cell) return;
    if (cell.dataset.commandId && Number(cell.dataset.commandId) > c.id) return;  // an older load
    cell.dataset.commandId = c.id;
    const pct = Math.round((c.progress || 0) * 100);
    cell.innerHTML = '<progress max="100"></progress> <span class="load-text"></span>';
    cell.firstChild.value = pct;
    text(cell.lastChild, (c.model || "") + ": " + c.status + (c.status === "sent" || c.status === "acknowledged" ? " " + pct + "%" : "") +
      (c.reason ? " (" + c.reason + ")" : ""));
  }

  function commandRow(c) {
    loadCell(c);
    const table = document.getElementById("commands-table");
    let tr = table.querySelector('tr[data-command-id="' + c.id + '"]');
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.commandId = c.id;
      tr.innerHTML = "<td></td><td></td><td></td><td class=status></td><td class=progress></td><td></td><td></td>";
      table.rows[0].after(tr);
      const cells = tr.children;
      text(cells[0], c.command_id); text(cells[1], c.hostname); text(cells[2], c.type + " " + (c.model || ""));
      text(cells[5], c.created_by); text(cells[6], c.created_at.substring(11, 19));
    }
    const st = tr.querySelector(".status");
    st.innerHTML = '<span class="badge"></span> <span class="muted"></span>';
    st.firstChild.className = "badge cmd-" + c.status; text(st.firstChild, c.status);
    text(st.lastChild, c.reason || "");
    text(tr.querySelector(".progress"), c.progress == null ? "" : Math.round(c.progress * 100) + "%");
  }

  const socket = io("/fleet", {transports: ["websocket", "polling"]});
  socket.on("car_status", carRow);
  socket.on("command_status", commandRow);

  const all = document.getElementById("select-all");
  if (all) all.addEventListener("change", () => document.querySelectorAll(".car-select").forEach((b) => { b.checked = all.checked; }));

  document.querySelectorAll("#commands button[data-cmd]").forEach((btn) => btn.addEventListener("click", async () => {
    const type = btn.dataset.cmd;
    const carIds = Array.from(document.querySelectorAll(".car-select:checked")).map((b) => Number(b.value));
    const modelIds = Array.from(document.getElementById("cmd-model").selectedOptions).map((o) => Number(o.value));
    if (type === "load_model") {  // every selected model onto every selected car (POST /api/fleet/load)
      const resp = await fetch("/api/fleet/load", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
        body: JSON.stringify({car_ids: carIds, model_ids: modelIds, clear_first: document.getElementById("cmd-clear").checked})});
      const body = await resp.json();
      text(document.getElementById("cmd-message"), resp.ok ? "load_model sent to " + carIds.length + " car(s)" +
        (modelIds.length > 1 ? " (" + modelIds.length + " models, one after the other)" : "") : body.error);
      if (resp.ok) body.commands.forEach(commandRow);
      return;
    }
    const params = {};
    if (type === "start_driving") params.model_id = modelIds[0];
    if (type === "set_tail_light") params.colour = document.getElementById("cmd-light").value;
    if (type === "set_max_speed") params.max_speed_mps = Number(document.getElementById("cmd-speed").value);
    const resp = await fetch("/api/fleet/commands", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRFToken": csrf},
      body: JSON.stringify({car_ids: carIds, type: type, params: params})});
    const body = await resp.json();
    text(document.getElementById("cmd-message"), resp.ok ? type + " sent to " + body.commands.length + " car(s)" : body.error);
    if (resp.ok) body.commands.forEach(commandRow);
  }));
})();
