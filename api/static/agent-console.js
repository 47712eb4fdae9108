/* Kefu agent console: live inbox and conversation over the agent WebSocket (/api/agent/ws),
 * the reply box (Ctrl+Enter), typing notices, the canned-response picker (/ or Ctrl+K) and
 * Alt+N for the next conversation. Loaded as a file (the console's CSP allows no inline
 * script); every piece of user data goes into the page with textContent, never as HTML. */
(function () {
  "use strict";

  var desk = document.getElementById("desk");
  if (!desk) return;
  var page = desk.getAttribute("data-page");
  var cid = desk.getAttribute("data-cid") || "";
  var csrf = desk.getAttribute("data-csrf") || "";
  var liveStatus = document.getElementById("live-status");
  var TYPING_EVERY_MS = 3000;
  var TYPING_IDLE_MS = 4000;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function showLive(ok) {
    if (!liveStatus) return;
    if (ok) {
      liveStatus.setAttribute("hidden", "");
      liveStatus.textContent = "";
    } else {
      liveStatus.textContent = desk.getAttribute("data-live-off") || "…";
      liveStatus.removeAttribute("hidden");
    }
  }

  // --- the inbox: refresh the server-rendered lists when something changes ---------------

  var refreshTimer = null;
  function refreshInbox() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      document.body.dispatchEvent(new CustomEvent("kefu:refresh"));
    }, 150);
  }

  function tickWaits() {
    var now = Date.now();
    var nodes = document.querySelectorAll(".waited[data-since]");
    for (var i = 0; i < nodes.length; i++) {
      var since = Date.parse(nodes[i].getAttribute("data-since"));
      if (isNaN(since)) continue;
      var seconds = Math.max(0, Math.floor((now - since) / 1000));
      var mm = Math.floor(seconds / 60);
      var ss = seconds % 60;
      nodes[i].textContent = mm + ":" + (ss < 10 ? "0" : "") + ss;
    }
  }

  // --- the conversation: the transcript -----------------------------------------------------

  var transcript = document.getElementById("transcript");

  function roleLabel(role) {
    return desk.getAttribute("data-label-" + role) || role;
  }

  function appendMessage(m) {
    if (!transcript || !m || typeof m.id !== "number") return;
    if (transcript.querySelector('[data-id="' + m.id + '"]')) return;
    var item = el("li", "msg msg-" + (m.role || "system"));
    item.setAttribute("data-id", String(m.id));
    var when = typeof m.created_at === "string" ? m.created_at.slice(11, 19) : "";
    item.appendChild(el("div", "msg-who", (m.author || roleLabel(m.role)) + " · " + when));
    item.appendChild(el("div", "msg-text", m.text || ""));
    if (Array.isArray(m.buttons) && m.buttons.length) {
      var row = el("div", "msg-buttons");
      m.buttons.forEach(function (b) {
        if (b && typeof b.title === "string") row.appendChild(el("span", "chip", b.title));
      });
      item.appendChild(row);
    }
    transcript.appendChild(item);
    item.scrollIntoView({ block: "end" });
  }

  // --- the socket -------------------------------------------------------------------------

  var retries = 0;
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/api/agent/ws");
    var pinger = null;
    ws.onopen = function () {
      retries = 0;
      showLive(true);
      pinger = setInterval(function () {
        if (ws.readyState === 1) ws.send(JSON.stringify({ type: "ping" }));
      }, 25000);
    };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (!frame || typeof frame !== "object") return;
      onFrame(frame);
    };
    ws.onclose = function (event) {
      if (pinger) clearInterval(pinger);
      if (event.code === 4401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname); return; }
      showLive(false);
      retries += 1;
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, retries)));
    };
  }

  function onFrame(frame) {
    if (page === "inbox") {
      if (frame.type === "hello") {
        // The page was rendered a moment ago; anything since shows up on the next event.
        return;
      }
      if (["queue", "assigned", "released", "ticket", "message"].indexOf(frame.type) >= 0) refreshInbox();
      return;
    }
    if (page !== "conversation") return;
    if (frame.conversation_id !== cid) return;
    if (frame.type === "message") appendMessage(frame.message);
    else if (frame.type === "released" || frame.type === "assigned") location.reload();
  }

  // --- the reply box ----------------------------------------------------------------------

  var form = document.getElementById("reply-form");
  var box = document.getElementById("reply-text");
  var replyStatus = document.getElementById("reply-status");
  var owned = desk.getAttribute("data-owned") === "1";

  function api(path, body) {
    return fetch("/api/agent/conversations/" + encodeURIComponent(cid) + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var message = (data && data.error && data.error.message) || ("HTTP " + response.status);
          throw new Error(message);
        }
        return data;
      });
    });
  }

  var lastTypingAt = 0;
  var typingOn = false;
  var idleTimer = null;
  function typing() {
    if (!owned) return;
    var now = Date.now();
    if (!typingOn || now - lastTypingAt > TYPING_EVERY_MS) {
      lastTypingAt = now;
      typingOn = true;
      api("/typing", { on: true }).catch(function () {});
    }
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = setTimeout(stopTyping, TYPING_IDLE_MS);
  }
  function stopTyping() {
    if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
    if (!typingOn) return;
    typingOn = false;
    api("/typing", { on: false }).catch(function () {});
  }

  var sending = false;
  function send() {
    if (!box || !owned || sending) return;
    var text = box.value.trim();
    if (!text) return;
    sending = true;
    if (idleTimer) { clearTimeout(idleTimer); idleTimer = null; }
    typingOn = false; // the server turns "typing" off when the message is stored
    api("/messages", { text: text }).then(function (data) {
      box.value = "";
      if (replyStatus) replyStatus.textContent = "";
      appendMessage(data.message);
    }).catch(function (error) {
      if (replyStatus) replyStatus.textContent = error.message;
    }).then(function () {
      sending = false;
      box.focus();
    });
  }

  // --- the canned-response picker -----------------------------------------------------------

  var picker = document.getElementById("canned-picker");
  var query = document.getElementById("canned-q");
  var results = document.getElementById("canned-results");
  var found = [];
  var selected = 0;
  var searchTimer = null;
  var searchSeq = 0;

  function openPicker(initial) {
    if (!picker || !owned) return;
    picker.removeAttribute("hidden");
    query.value = initial || "";
    search();
    query.focus();
  }
  function closePicker() {
    if (!picker) return;
    picker.setAttribute("hidden", "");
    if (box) box.focus();
  }
  function pickerOpen() { return picker && !picker.hasAttribute("hidden"); }

  function showResults() {
    while (results.firstChild) results.removeChild(results.firstChild);
    found.forEach(function (r, i) {
      var item = el("li", "canned-item" + (i === selected ? " selected" : ""));
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", i === selected ? "true" : "false");
      item.setAttribute("data-shortcode", r.shortcode);
      var head = el("div", "canned-head");
      head.appendChild(el("code", null, "/" + r.shortcode));
      head.appendChild(el("span", "canned-lang", r.language));
      head.appendChild(el("strong", null, r.title));
      item.appendChild(head);
      item.appendChild(el("div", "canned-text", r.text));
      item.addEventListener("mousedown", function (event) {
        event.preventDefault();
        selected = i;
        insert();
      });
      results.appendChild(item);
    });
  }

  function search() {
    if (searchTimer) clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      var seq = ++searchSeq;
      var url = "/console/agent/c/" + encodeURIComponent(cid) + "/canned?q=" + encodeURIComponent(query.value);
      fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (data) {
        if (seq !== searchSeq) return; // a newer search is on its way
        found = (data && data.results) || [];
        selected = 0;
        showResults();
      }).catch(function () {});
    }, 120);
  }

  function insert() {
    var choice = found[selected];
    if (!choice || !box) return;
    var start = box.selectionStart || 0;
    var end = box.selectionEnd || 0;
    box.value = box.value.slice(0, start) + choice.text + box.value.slice(end);
    closePicker();
    var at = start + choice.text.length;
    box.setSelectionRange(at, at);
    typing();
  }

  // --- keys -------------------------------------------------------------------------------

  function nextConversation() {
    var mine = (desk.getAttribute("data-mine") || "").split(" ").filter(Boolean);
    if (page === "inbox") {
      var first = document.querySelector("#mine-list [data-cid]");
      if (first) location.href = "/console/agent/c/" + first.getAttribute("data-cid");
      return;
    }
    if (!mine.length) return;
    var at = mine.indexOf(cid);
    var next = mine[(at + 1) % mine.length];
    if (next && next !== cid) location.href = "/console/agent/c/" + next;
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey && !event.ctrlKey && (event.code === "KeyN" || event.key === "n")) {
      event.preventDefault();
      nextConversation();
    }
  });

  if (page === "inbox") {
    tickWaits();
    setInterval(tickWaits, 1000);
  }

  if (page === "conversation" && box) {
    if (transcript && transcript.lastElementChild) transcript.lastElementChild.scrollIntoView({ block: "end" });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send();
    });
    box.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") {
        event.preventDefault();
        send();
      } else if ((event.ctrlKey || event.metaKey) && (event.key === "k" || event.key === "K")) {
        event.preventDefault();
        openPicker("");
      } else if (event.key === "/" && box.value === "") {
        event.preventDefault();
        openPicker("");
      }
    });
    box.addEventListener("input", typing);
    // Leaving the page while typing: tell the shopper it stopped (keepalive outlives the page).
    window.addEventListener("pagehide", function () {
      if (!typingOn) return;
      typingOn = false;
      fetch("/api/agent/conversations/" + encodeURIComponent(cid) + "/typing", {
        method: "POST", credentials: "same-origin", keepalive: true,
        headers: { "content-type": "application/json", "x-csrf-token": csrf },
        body: JSON.stringify({ on: false }),
      }).catch(function () {});
    });
    box.addEventListener("blur", function () { if (!pickerOpen()) stopTyping(); });
    var openButton = document.getElementById("canned-open");
    if (openButton) openButton.addEventListener("click", function () { openPicker(""); });
    if (query) {
      query.addEventListener("input", search);
      query.addEventListener("keydown", function (event) {
        if (event.key === "ArrowDown") {
          event.preventDefault();
          selected = Math.min(found.length - 1, selected + 1);
          showResults();
        } else if (event.key === "ArrowUp") {
          event.preventDefault();
          selected = Math.max(0, selected - 1);
          showResults();
        } else if (event.key === "Enter") {
          event.preventDefault();
          insert();
        } else if (event.key === "Escape") {
          event.preventDefault();
          closePicker();
        }
      });
    }
    if (owned) box.focus();
  }

  connect();
})();
