// GateFrames staff console: local times, calls in progress and a conversation's thread kept
// fresh from /staff/api without reloading. Text is only ever set with textContent.
"use strict";

(function () {
  const LIVE_SECONDS = 5;
  const THREAD_SECONDS = 4;
  const state = (window.consoleState = { liveUpdates: 0, threadUpdates: 0, errors: 0 });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.title = el.textContent;
        el.textContent = when.toLocaleString([], {
          month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        });
      }
    });
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (response.status === 401) {
      window.location.assign("/staff/login?next=" + encodeURIComponent(window.location.pathname));
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function elapsed(started) {
    const s = Math.max(0, Math.floor(Date.now() / 1000 - started));
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function tickLive() {
    document.querySelectorAll("#live li[data-started]").forEach((li) => {
      li.querySelector(".elapsed").textContent = elapsed(Number(li.dataset.started));
    });
  }

  function renderLive(list, calls) {
    list.replaceChildren(
      ...calls.map((call) => {
        const li = el("li");
        li.dataset.started = call.started_at;
        li.append(el("strong", "", call.caller || "unknown"), " ", el("span", "muted", call.direction || ""), " ", el("span", "elapsed"));
        return li;
      })
    );
    document.getElementById("live-count").textContent = calls.length;
    document.getElementById("live-empty").hidden = calls.length > 0;
    tickLive();
  }

  function watchLive() {
    const list = document.getElementById("live");
    if (!list) return;
    const refresh = async () => {
      try {
        renderLive(list, (await getJSON(list.dataset.src)).calls);
        state.liveUpdates += 1;
      } catch (e) {
        state.errors += 1;
      }
    };
    tickLive();
    setInterval(tickLive, 1000);
    setInterval(refresh, LIVE_SECONDS * 1000);
  }

  function renderThread(list, convo) {
    list.replaceChildren(
      ...convo.messages.map((m) => {
        const li = el("li", "msg by-" + (m.by === "assistant" || m.by === "customer" ? m.by : "staff"));
        li.dataset.sid = m.sid;
        const time = el("time", "", m.at || "");
        if (m.at) time.setAttribute("datetime", m.at);
        li.append(el("span", "who", m.label), el("span", "body", m.body), time);
        return li;
      })
    );
    localTimes(list);
    const status = document.getElementById("status");
    const shown = status && status.classList.contains("held");
    const typing = document.getElementById("body");
    if (status && shown !== convo.taken_over && !(typing && typing.value)) {
      window.location.reload(); // the holder changed: the server draws the right buttons
    }
  }

  function watchThread() {
    const list = document.getElementById("thread");
    if (!list) return;
    setInterval(async () => {
      try {
        renderThread(list, await getJSON(list.dataset.src));
        state.threadUpdates += 1;
      } catch (e) {
        state.errors += 1;
      }
    }, THREAD_SECONDS * 1000);
  }

  document.addEventListener("DOMContentLoaded", () => {
    localTimes(document);
    watchLive();
    watchThread();
  });
})();
