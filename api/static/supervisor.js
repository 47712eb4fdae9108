// The supervisor board (/console/supervisor): htmx polls it every few seconds; this script
// makes it refresh at once on any event of the agent socket (/api/agent/ws: a claim, the
// queue, a hand-back...) or of the status control, and holds refreshes while a form control
// inside the board has the focus, so a choice being made is not swapped away.
(function () {
  "use strict";

  let timer = null;
  let delay = 1000;

  function refresh() {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      document.body.dispatchEvent(new CustomEvent("kefu:refresh", { bubbles: true }));
    }, 150);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let socket;
    try {
      socket = new WebSocket(scheme + "//" + location.host + "/api/agent/ws");
    } catch (err) {
      return;
    }
    const ping = setInterval(() => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
    }, 25000);
    socket.addEventListener("open", () => {
      delay = 1000;
      document.body.dataset.live = "socket";
    });
    socket.addEventListener("message", (event) => {
      let frame = null;
      try {
        frame = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (frame && frame.type !== "pong") refresh();
    });
    socket.addEventListener("close", (event) => {
      clearInterval(ping);
      document.body.dataset.live = "polling";
      if (event.code === 4401) return; // logged out: polling will show it
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }

  document.body.addEventListener("kefu:status", refresh);
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    const board = document.getElementById("board");
    const active = document.activeElement;
    if (
      board &&
      event.detail.elt === board &&
      active &&
      board.contains(active) &&
      (active.tagName === "SELECT" || active.tagName === "INPUT")
    ) {
      event.preventDefault();
    }
  });
  // A poll answered by the log-in page (the session ended): go there instead of swapping
  // the whole page into the board.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const xhr = event.detail.xhr;
    if (xhr && xhr.responseURL && new URL(xhr.responseURL).pathname === "/console/login") {
      event.detail.shouldSwap = false;
      location.assign("/console/login?next=" + encodeURIComponent(location.pathname));
    }
  });
  connect();
})();
