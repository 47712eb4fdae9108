/*
 * Kefu chat widget. Embed it in any page with one script tag:
 *
 *   <script src="https://kefu.example.com/widget.js" async
 *           data-store="my-shop" data-lang="zh"
 *           data-customer-token="(issued by the store's backend, optional)"
 *           data-page='{"product_id": "P-OXF"}'></script>
 *
 * or set window.KefuConfig = {store, lang, customerToken, page} before it loads.
 * window.Kefu.open() / .close() / .setPage(page) / .setCustomerToken(token) for single-page
 * shops. The visitor token lives in this page's localStorage (never in a URL or a cookie);
 * messages not yet acknowledged are kept there too and sent again, with the same client
 * id, after a dropped connection or a reload — the server stores each one once.
 * Everything shown is set as text, never parsed as HTML.
 */
(function () {
  "use strict";
  if (window.Kefu && window.Kefu.loaded) return;

  var script = document.currentScript;
  var cfg = Object.assign({}, window.KefuConfig || {});
  if (script && script.dataset) {
    var ds = script.dataset;
    cfg.store = cfg.store || ds.store;
    cfg.lang = cfg.lang || ds.lang;
    cfg.customerToken = cfg.customerToken || ds.customerToken || "";
    if (!cfg.page && ds.page) {
      try { cfg.page = JSON.parse(ds.page); } catch (e) { cfg.page = null; }
    }
  }
  var origin = new URL(script && script.src ? script.src : location.href).origin;
  var wsUrl = origin.replace(/^http/, "ws") + "/api/chat/ws";
  var lang = cfg.lang === "en" || cfg.lang === "zh" ? cfg.lang
    : /^zh/i.test(navigator.language || "zh") ? "zh" : "en";
  var MAX_CHARS = 2000;
  var KEY = "kefu:" + origin + ":" + (cfg.store || "default") + ":";

  var TEXT = {
    zh: {
      title: "在线客服", open: "打开在线客服", close: "关闭聊天窗口", input: "输入消息",
      placeholder: "请输入您的问题，回车发送", send: "发送", typing: "客服正在输入…",
      connecting: "正在连接…", reconnecting: "连接已断开，正在重新连接…",
      refused: "当前网页无法连接客服，请直接联系商家。", unread: "条未读消息",
      you: "我", bot: "智能客服", agent: "人工客服", system: "系统消息",
      failed: "未发送", sending: "发送中", retry: "重发",
      tooLong: "消息太长了（最多 2000 个字），请分几条发送。",
      messages: "您发送得太频繁了，请 {s} 秒后再试。",
      conversations: "新会话太多了，请 {s} 秒后再试。",
      sockets: "打开的聊天窗口太多了，请关闭其他窗口后再试。",
      storage: "消息暂时无法保存，稍后会自动重发。",
      queued: "正在为您转接人工客服，前面还有 {n} 位，预计等待约 {m} 分钟。",
      queuedNow: "正在为您转接人工客服，请稍候。",
      cancelQueue: "不等了，继续和智能客服聊",
      agentJoined: "人工客服 {name} 为您服务",
      offline: "现在没有人工客服可以接待（服务时间外或暂无客服在线）。留下电话和留言，我们会尽快联系您：",
      phone: "手机号", note: "留言（可选）", leave: "提交",
      ticketThanks: "已收到您的留言，我们会尽快联系您。",
      badToken: "登录状态已失效，已切换为游客身份。",
      consent: "接收店铺的优惠和新品推荐（可随时取消）",
      consentRenew: "隐私条款已更新，请重新确认是否接收优惠推荐。",
      myData: "下载我的数据", myDataFailed: "暂时无法生成下载链接，请稍后再试。"
    },
    en: {
      title: "Customer service", open: "Open customer service chat", close: "Close chat",
      input: "Message", placeholder: "Type your question and press Enter", send: "Send",
      typing: "Typing…", connecting: "Connecting…",
      reconnecting: "Connection lost, reconnecting…",
      refused: "Chat is not available on this page. Please contact the store.",
      unread: "unread messages", you: "You", bot: "Assistant", agent: "Agent",
      system: "Notice", failed: "Not sent", sending: "Sending", retry: "Retry",
      tooLong: "That message is too long (at most 2,000 characters). Please split it up.",
      messages: "You are sending messages too fast. Please try again in {s} s.",
      conversations: "Too many new chats. Please try again in {s} s.",
      sockets: "Too many chat windows are open. Close some and try again.",
      storage: "Messages cannot be saved right now; they will be sent again shortly.",
      queued: "Connecting you to a person. {n} ahead of you, about {m} min.",
      queuedNow: "Connecting you to a person, one moment please.",
      cancelQueue: "Stop waiting, go back to the assistant",
      agentJoined: "{name} from our team has joined",
      offline: "Nobody from our team can answer right now (outside service hours or nobody online). Leave a phone number and a note and we will get back to you:",
      phone: "Phone number", note: "Note (optional)", leave: "Send",
      ticketThanks: "Thank you, we will get back to you soon.",
      badToken: "Your store login has expired; continuing as a guest.",
      consent: "Send me the store's offers and recommendations (you can stop any time)",
      consentRenew: "Our privacy terms changed: please confirm whether you want offers.",
      myData: "Download my data", myDataFailed: "The download link could not be made; please try again later."
    }
  }[lang];

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return String(values[k]); });
  }

  var storage = {
    get: function (name, fallback) {
      try {
        var raw = window.localStorage.getItem(KEY + name);
        return raw === null ? fallback : JSON.parse(raw);
      } catch (e) { return fallback; }
    },
    set: function (name, value) {
      try { window.localStorage.setItem(KEY + name, JSON.stringify(value)); } catch (e) { /* private mode */ }
    }
  };

  var CSS = [
    ":host { all: initial; font-family: system-ui, 'Noto Sans CJK SC', 'PingFang SC', sans-serif; }",
    ".launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; width: 60px; height: 60px;",
    "  border-radius: 50%; border: 0; background: #1d3557; color: #fff; font-size: 15px; cursor: pointer;",
    "  box-shadow: 0 4px 14px rgba(0,0,0,.25); }",
    ".launcher:focus-visible, button:focus-visible, textarea:focus-visible { outline: 3px solid #f4a261; outline-offset: 2px; }",
    ".badge { position: absolute; top: -4px; right: -4px; min-width: 20px; height: 20px; padding: 0 5px;",
    "  border-radius: 10px; background: #d62828; color: #fff; font-size: 12px; line-height: 20px; }",
    ".badge[hidden], [hidden] { display: none !important; }",
    ".panel { position: fixed; right: 20px; bottom: 92px; z-index: 2147483001; width: 360px; height: min(560px, calc(100vh - 120px));",
    "  display: flex; flex-direction: column; background: #fff; color: #1d2330; border-radius: 12px;",
    "  box-shadow: 0 8px 30px rgba(0,0,0,.28); overflow: hidden; font-size: 14px; }",
    "header { display: flex; align-items: center; padding: 10px 12px; background: #1d3557; color: #fff; }",
    "header h2 { font-size: 15px; margin: 0; flex: 1; }",
    "header button { background: transparent; border: 0; color: #fff; font-size: 20px; cursor: pointer; width: 32px; height: 32px; }",
    ".status { padding: 6px 12px; background: #fff4e5; color: #7a4b00; font-size: 12px; }",
    ".handoff { padding: 8px 12px; background: #e8f1fb; color: #1d3557; font-size: 13px; display: grid; gap: 6px; }",
    ".handoff form { display: grid; gap: 6px; padding: 0; border: 0; background: transparent; }",
    ".handoff input { font: inherit; padding: 5px 7px; border: 1px solid #c9cfdb; border-radius: 6px; }",
    ".handoff button { justify-self: start; font: inherit; font-size: 12px; padding: 3px 8px; border: 1px solid #1d3557; background: #fff; color: #1d3557; border-radius: 4px; cursor: pointer; }",
    ".log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 10px; background: #f7f8fb; }",
    ".msg { display: flex; flex-direction: column; max-width: 82%; }",
    ".msg.shopper { align-self: flex-end; align-items: flex-end; }",
    ".msg.bot, .msg.agent, .msg.system { align-self: flex-start; }",
    ".bubble { padding: 8px 11px; border-radius: 10px; white-space: pre-wrap; word-break: break-word; line-height: 1.45; }",
    ".shopper .bubble { background: #1d3557; color: #fff; border-bottom-right-radius: 3px; }",
    ".bot .bubble { background: #fff; border: 1px solid #e3e6ee; border-bottom-left-radius: 3px; }",
    ".agent .bubble { background: #e9f7ef; border: 1px solid #b7e1c7; }",
    ".system .bubble { background: transparent; color: #5b6476; font-size: 12px; padding: 0; }",
    ".meta { font-size: 11px; color: #7a8293; margin-top: 3px; }",
    ".msg.failed .meta { color: #b42318; }",
    ".meta button { font: inherit; color: #1d3557; background: none; border: 0; text-decoration: underline; cursor: pointer; padding: 0 0 0 4px; }",
    ".quick { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 6px; }",
    ".quick button { font: inherit; font-size: 13px; padding: 5px 10px; border-radius: 14px; border: 1px solid #1d3557; background: #fff; color: #1d3557; cursor: pointer; }",
    ".typing { padding: 0 12px 6px; font-size: 12px; color: #5b6476; background: #f7f8fb; min-height: 18px; }",
    "form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e3e6ee; background: #fff; }",
    "textarea { flex: 1; resize: none; font: inherit; padding: 7px 9px; border: 1px solid #c9cfdb; border-radius: 8px; height: 40px; max-height: 120px; }",
    "form button { font: inherit; padding: 0 14px; border: 0; border-radius: 8px; background: #1d3557; color: #fff; cursor: pointer; }",
    ".consent { display: flex; gap: 6px; align-items: flex-start; padding: 6px 12px; font-size: 12px; color: #5b6476; background: #fff; border-top: 1px solid #e3e6ee; }",
    ".consent input { margin: 2px 0 0; }",
    ".mydata { padding: 0 12px 6px; background: #fff; font-size: 12px; }",
    ".mydata button { border: 0; background: none; padding: 0; color: #5b6476; text-decoration: underline; cursor: pointer; font: inherit; }",
    ".sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }",
    "@media (max-width: 480px) {",
    "  .panel { right: 0; bottom: 0; width: 100vw; height: 100%; border-radius: 0; }",
    "  .launcher { right: 14px; bottom: 14px; }",
    "}"
  ].join("\n");

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;  // text, never HTML
    return node;
  }

  // ---- the DOM, inside a shadow root so the host page's styles neither leak in nor out
  var host = el("div", { id: "kefu-widget", "data-kefu": "" });
  var root = host.attachShadow({ mode: "open" });
  if (root.adoptedStyleSheets !== undefined && window.CSSStyleSheet && CSSStyleSheet.prototype.replaceSync) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } else {
    root.appendChild(el("style", {}, CSS));
  }
  var launcher = el("button", { class: "launcher", type: "button", "aria-label": TEXT.open,
    "aria-expanded": "false", "aria-controls": "kefu-panel" }, lang === "en" ? "Chat" : "客服");
  var badge = el("span", { class: "badge", hidden: "", "aria-hidden": "true" });
  launcher.appendChild(badge);
  var panel = el("section", { class: "panel", id: "kefu-panel", role: "dialog",
    "aria-labelledby": "kefu-title", hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", { id: "kefu-title" }, TEXT.title));
  var closer = el("button", { type: "button", "aria-label": TEXT.close }, "×");
  header.appendChild(closer);
  var status = el("div", { class: "status", role: "status", hidden: "" });
  var handoff = el("div", { class: "handoff", role: "status", hidden: "" });
  var handoffText = el("span");
  var cancelQueue = el("button", { type: "button", hidden: "" }, TEXT.cancelQueue);
  var ticketForm = el("form", { class: "ticket", hidden: "" });
  var ticketPhone = el("input", { type: "tel", name: "phone", required: "", maxlength: "20",
    pattern: "[0-9+\\- ]{6,20}", autocomplete: "tel", placeholder: TEXT.phone, "aria-label": TEXT.phone });
  var ticketNote = el("input", { type: "text", name: "note", maxlength: "500",
    placeholder: TEXT.note, "aria-label": TEXT.note });
  ticketForm.appendChild(ticketPhone);
  ticketForm.appendChild(ticketNote);
  ticketForm.appendChild(el("button", { type: "submit" }, TEXT.leave));
  handoff.appendChild(handoffText);
  handoff.appendChild(cancelQueue);
  handoff.appendChild(ticketForm);
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": TEXT.title });
  var typing = el("div", { class: "typing", "aria-live": "polite" });
  var form = el("form");
  var inputLabel = el("label", { class: "sr", for: "kefu-input" }, TEXT.input);
  var input = el("textarea", { id: "kefu-input", rows: "1", maxlength: String(MAX_CHARS),
    placeholder: TEXT.placeholder, "aria-label": TEXT.input });
  var sendButton = el("button", { type: "submit" }, TEXT.send);
  form.appendChild(inputLabel);
  form.appendChild(input);
  form.appendChild(sendButton);
  // Marketing consent, for a shopper logged in to the store (the welcome frame says).
  var consentRow = el("label", { class: "consent", hidden: "" });
  var consentBox = el("input", { type: "checkbox", name: "marketing" });
  var consentText = el("span", {}, TEXT.consent);
  consentRow.appendChild(consentBox);
  consentRow.appendChild(consentText);
  // The shopper's own data export (a short-lived signed link), also for logged-in shoppers.
  var dataRow = el("div", { class: "mydata", hidden: "" });
  var dataButton = el("button", { type: "button" }, TEXT.myData);
  dataRow.appendChild(dataButton);
  [header, status, handoff, log, typing, form, consentRow, dataRow].forEach(function (n) { panel.appendChild(n); });
  root.appendChild(launcher);
  root.appendChild(panel);

  // ---- state
  var ws = null;
  var connected = false;
  var conversationId = storage.get("conversation", null);
  var visitorToken = storage.get("visitor", null);
  var outbox = storage.get("outbox", []);  // [{client_id, text, payload}], oldest first
  var shown = {};      // message id -> element
  var pending = {};    // client id -> element of a shopper message not yet acknowledged
  var lastId = 0;
  var unread = 0;
  var isOpen = false;
  var retries = 0;
  var retryTimer = null;
  var pingTimer = null;
  var stopped = false;

  function setStatus(text) {
    status.textContent = text || "";
    if (text) status.removeAttribute("hidden"); else status.setAttribute("hidden", "");
  }

  function setUnread(n) {
    unread = n;
    badge.textContent = String(n);
    if (n > 0) {
      badge.removeAttribute("hidden");
      launcher.setAttribute("aria-label", TEXT.open + " (" + n + " " + TEXT.unread + ")");
    } else {
      badge.setAttribute("hidden", "");
      launcher.setAttribute("aria-label", TEXT.open);
    }
  }

  function timeOf(iso) {
    var d = iso ? new Date(iso) : new Date();
    return d.toLocaleTimeString(lang === "en" ? "en-GB" : "zh-CN", { hour: "2-digit", minute: "2-digit" });
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function clearQuickReplies() {
    var old = log.querySelectorAll(".quick");
    for (var i = 0; i < old.length; i++) old[i].remove();
  }

  function messageNode(role, text, when, author) {
    var node = el("div", { class: "msg " + role, "data-role": role });
    node.appendChild(el("div", { class: "bubble" }, text));
    var who = role === "shopper" ? TEXT.you : role === "agent" ? (author || TEXT.agent)
      : role === "system" ? TEXT.system : TEXT.bot;
    node.appendChild(el("div", { class: "meta" }, who + " · " + timeOf(when)));
    return node;
  }

  function render(m) {
    if (!m || typeof m.id !== "number" || shown[m.id]) return;
    lastId = Math.max(lastId, m.id);
    if (m.role === "shopper" && m.client_id && pending[m.client_id]) {
      acknowledge(m.client_id, m.id);
      return;
    }
    var node = messageNode(m.role, m.text || "", m.created_at, m.author || (m.agent && m.agent.name));
    node.setAttribute("data-id", String(m.id));
    if (m.role !== "shopper") clearQuickReplies();
    if (Array.isArray(m.buttons) && m.buttons.length) {
      var quick = el("div", { class: "quick", role: "group" });
      m.buttons.forEach(function (b) {
        if (!b || typeof b.title !== "string") return;
        var button = el("button", { type: "button" }, b.title);
        button.addEventListener("click", function () {
          clearQuickReplies();
          send(b.title, typeof b.payload === "string" ? b.payload : null);
        });
        quick.appendChild(button);
      });
      node.appendChild(quick);
    }
    shown[m.id] = node;
    log.appendChild(node);
    if (m.role !== "shopper" && !isOpen) setUnread(unread + 1);
    scrollDown();
  }

  function acknowledge(clientId, id) {
    var node = pending[clientId];
    delete pending[clientId];
    outbox = outbox.filter(function (o) { return o.client_id !== clientId; });
    storage.set("outbox", outbox);
    if (!node) return;
    node.classList.remove("sending");
    node.querySelector(".meta").textContent = TEXT.you + " · " + timeOf();
    if (typeof id === "number") {
      node.setAttribute("data-id", String(id));
      shown[id] = node;
      lastId = Math.max(lastId, id);
    }
  }

  function fail(clientId, reason) {
    var node = pending[clientId];
    var item = outbox.filter(function (o) { return o.client_id === clientId; })[0];
    delete pending[clientId];
    outbox = outbox.filter(function (o) { return o.client_id !== clientId; });
    storage.set("outbox", outbox);
    if (!node) return;
    node.classList.add("failed");
    var meta = node.querySelector(".meta");
    meta.textContent = TEXT.failed + (reason ? ": " + reason : "");
    if (item) {
      var again = el("button", { type: "button" }, TEXT.retry);
      again.addEventListener("click", function () { node.remove(); send(item.text, item.payload); });
      meta.appendChild(again);
    }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function frameOf(item) {
    var frame = { type: "message", client_id: item.client_id, text: item.text };
    if (item.payload) frame.payload = item.payload;
    if (cfg.page) frame.page = cfg.page;
    return frame;
  }

  function showPending(item) {
    var node = messageNode("shopper", item.text, null);
    node.classList.add("sending");
    node.querySelector(".meta").textContent = TEXT.sending + "…";
    pending[item.client_id] = node;
    log.appendChild(node);
    scrollDown();
  }

  function send(text, payload) {
    text = String(text || "");
    if (!text.trim() && !payload) return;
    if (text.length > MAX_CHARS) { setStatus(TEXT.tooLong); return; }
    var item = { client_id: newClientId(), text: text, payload: payload || null };
    outbox.push(item);
    storage.set("outbox", outbox);
    showPending(item);
    if (connected) ws.send(JSON.stringify(frameOf(item)));
  }

  function showHandoff(h) {
    ticketForm.setAttribute("hidden", "");
    cancelQueue.setAttribute("hidden", "");
    if (!h || !h.state || h.state === "bot" || h.state === "closed") {
      handoff.setAttribute("hidden", "");
      return;
    }
    if (h.state === "offline") {
      handoffText.textContent = TEXT.offline;
      ticketForm.removeAttribute("hidden");
    } else if (h.state === "queued") {
      var minutes = Math.max(1, Math.round((h.eta_seconds || 0) / 60));
      handoffText.textContent = typeof h.position === "number"
        ? fmt(TEXT.queued, { n: Math.max(0, h.position - 1), m: minutes }) : TEXT.queuedNow;
      cancelQueue.removeAttribute("hidden");
    } else if (h.state === "agent") {
      handoffText.textContent = fmt(TEXT.agentJoined, { name: (h.agent && h.agent.name) || TEXT.agent });
    }
    handoff.removeAttribute("hidden");
  }

  function showConsent(state) {
    if (!state) { consentRow.setAttribute("hidden", ""); dataRow.setAttribute("hidden", ""); return; }
    dataRow.removeAttribute("hidden");
    consentBox.checked = Boolean(state.marketing) && !state.needs_renewal;
    consentText.textContent = state.needs_renewal && state.consent ? TEXT.consentRenew : TEXT.consent;
    consentRow.removeAttribute("hidden");
  }

  function limitText(error) {
    var key = { messages: "messages", conversations: "conversations", sockets: "sockets" }[error.limit];
    return key ? fmt(TEXT[key], { s: error.retry_after || 60 }) : error.message;
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        visitorToken = frame.visitor_token;
        storage.set("visitor", visitorToken);
        if (conversationId !== frame.conversation_id) {
          // Another conversation (a new chat, or the store login changed): start afresh.
          Object.keys(shown).forEach(function (id) { shown[id].remove(); });
          shown = {};
          lastId = 0;
          conversationId = frame.conversation_id;
          storage.set("conversation", conversationId);
        }
        (frame.history || []).forEach(render);
        showHandoff(frame.handoff);
        showConsent(frame.consent);
        connected = true;
        retries = 0;
        setStatus("");
        outbox.forEach(function (item) { ws.send(JSON.stringify(frameOf(item))); });
        break;
      case "ack":
        acknowledge(frame.client_id, frame.id);
        break;
      case "message":
        render(frame.message);
        break;
      case "history":
        (frame.messages || []).forEach(render);
        break;
      case "typing":
        typing.textContent = frame.on ? TEXT.typing : "";
        break;
      case "handoff":
        showHandoff(frame);
        break;
      case "consent":
        showConsent(frame);
        break;
      case "ticket":
        ticketForm.setAttribute("hidden", "");
        handoffText.textContent = TEXT.ticketThanks;
        break;
      case "error":
        if (frame.code === "storage_unavailable") { setStatus(TEXT.storage); break; }
        var reason = frame.code === "rate_limited" ? limitText(frame)
          : frame.code === "message_too_long" ? TEXT.tooLong : frame.message;
        if (frame.client_id) fail(frame.client_id, reason);
        else setStatus(reason);
        break;
      default:
        break;
    }
  }

  function connect() {
    if (stopped || ws) return;
    setStatus(retries ? TEXT.reconnecting : (isOpen ? TEXT.connecting : ""));
    var socket = new WebSocket(wsUrl);
    ws = socket;
    socket.onopen = function () {
      var hello = { type: "hello", language: lang, after_id: lastId };
      if (visitorToken) hello.visitor_token = visitorToken;
      if (cfg.customerToken) hello.customer_token = cfg.customerToken;
      if (cfg.page) hello.page = cfg.page;
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame && typeof frame === "object") onFrame(frame);
    };
    socket.onclose = function (event) {
      if (ws === socket) ws = null;
      connected = false;
      typing.textContent = "";
      if (event.code === 1008) { setStatus(TEXT.refused); return; }  // origin not allowed
      var delay = Math.min(10000, 500 * Math.pow(2, retries)) * (0.75 + Math.random() / 2);
      if (event.code === 4401) {  // the store's login token is no longer valid
        cfg.customerToken = "";
        setStatus(TEXT.badToken);
        delay = 300;
      } else if (event.code === 4429) {
        delay = 30000;
      } else {
        setStatus(TEXT.reconnecting);
      }
      retries += 1;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(connect, delay);
    };
  }

  function reconnectNow() {
    clearTimeout(retryTimer);
    if (!ws) connect();
  }

  function open() {
    isOpen = true;
    panel.removeAttribute("hidden");
    launcher.setAttribute("aria-expanded", "true");
    setUnread(0);
    storage.set("open", true);
    scrollDown();
    input.focus();
  }

  function close() {
    isOpen = false;
    panel.setAttribute("hidden", "");
    launcher.setAttribute("aria-expanded", "false");
    storage.set("open", false);
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });
  closer.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); close(); }
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim()) return;
    input.value = "";
    send(text, null);
    input.focus();
  });
  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; never while an input method is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit"));
    }
  });
  cancelQueue.addEventListener("click", function () {
    if (connected) ws.send(JSON.stringify({ type: "handoff_cancel" }));
  });
  consentBox.addEventListener("change", function () {
    if (connected) ws.send(JSON.stringify({ type: "consent", marketing: consentBox.checked }));
  });
  dataButton.addEventListener("click", function () {
    if (!visitorToken || !cfg.customerToken) return;
    dataButton.disabled = true;
    fetch(origin + "/api/chat/export", {
      method: "POST",
      headers: { "Authorization": "Bearer " + visitorToken, "X-Customer-Token": cfg.customerToken }
    }).then(function (r) {
      if (!r.ok) throw new Error("export " + r.status);
      return r.json();
    }).then(function (body) {
      // A same-origin path from our server; the file comes as an attachment.
      if (typeof body.url !== "string" || body.url.indexOf("/api/chat/export/") !== 0) throw new Error("bad url");
      var link = el("a", { href: origin + body.url, download: "", rel: "noopener" });
      root.appendChild(link);
      link.click();
      link.remove();
    }).catch(function () {
      setStatus(TEXT.myDataFailed);
    }).then(function () { dataButton.disabled = false; });
  });
  ticketForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!connected || !ticketPhone.value.trim()) return;
    ws.send(JSON.stringify({ type: "ticket", phone: ticketPhone.value.trim(), note: ticketNote.value }));
  });
  window.addEventListener("online", reconnectNow);
  pingTimer = setInterval(function () {
    if (connected) ws.send(JSON.stringify({ type: "ping" }));
  }, 25000);

  function mount() {
    document.body.appendChild(host);
    outbox.forEach(showPending);  // typed before a reload and not yet acknowledged
    if (storage.get("open", false)) open();
    connect();
  }

  window.Kefu = {
    loaded: true,
    open: open,
    close: close,
    setPage: function (page) { cfg.page = page || null; },
    setCustomerToken: function (token) {
      cfg.customerToken = token || "";
      if (ws) ws.close(); else reconnectNow();
    },
    // For tests and support: drop the connection as a network failure would.
    _dropConnection: function () { if (ws) ws.close(4000, "dropped"); },
    _stop: function () { stopped = true; clearInterval(pingTimer); if (ws) ws.close(); }
  };

  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
