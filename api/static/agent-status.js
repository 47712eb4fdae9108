// The staff member's own availability control (api/templates/console/_status.html):
// reads it from GET /api/agent/me, sets it with PUT /api/agent/status. Text only through
// textContent. After a change it fires "kefu:status" on document.body, so a page can refresh.
(function () {
  "use strict";

  // Labels come from the form's data-label-* attributes (the page's language).
  function label(form, key) {
    return form.dataset["label" + key.charAt(0).toUpperCase() + key.slice(1)] || key;
  }

  function show(form, agent) {
    form.elements.status.value = agent.status;
    form.elements.capacity.value = String(agent.capacity);
    const out = form.querySelector(".agent-status-now");
    out.textContent =
      label(form, agent.status) + " · " + label(form, "load") + " " + agent.load + "/" + agent.capacity;
    out.dataset.status = agent.status;
    form.dataset.status = agent.status;
  }

  function fail(form, message) {
    form.querySelector(".agent-status-now").textContent = message;
  }

  async function load(form) {
    try {
      const response = await fetch("/api/agent/me", { credentials: "same-origin" });
      if (!response.ok) return fail(form, "—");
      const body = await response.json();
      show(form, body.agent);
    } catch (err) {
      fail(form, "—");
    }
  }

  async function save(form) {
    const body = { status: form.elements.status.value };
    const capacity = form.elements.capacity.value.trim();
    if (capacity !== "") body.capacity = Number(capacity);
    try {
      const response = await fetch("/api/agent/status", {
        method: "PUT",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "x-csrf-token": form.dataset.csrf },
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        const detail = answer.error ? answer.error.message : "capacity 0–50";
        return fail(form, label(form, "failed") + ": " + detail);
      }
      show(form, answer.agent);
      document.body.dispatchEvent(new CustomEvent("kefu:status", { bubbles: true }));
    } catch (err) {
      fail(form, label(form, "failed"));
    }
  }

  function start() {
    for (const form of document.querySelectorAll("form.agent-status")) {
      if (form.dataset.ready) continue;
      form.dataset.ready = "1";
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        save(form);
      });
      load(form);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
