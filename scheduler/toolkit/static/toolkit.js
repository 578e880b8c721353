/* The supporters' page: keeps it true to the visitor's clock. tminus wrote the page.
 *
 * Everything this script shows comes from the JSON the build put in the page
 * (#toolkit-data): the texts of every step of the countdown, their share links, the
 * letter as segments of literal text and named blanks. The script only picks and
 * substitutes; it fetches nothing and loads nothing else.
 *
 * - the countdown ticks each second; at the deadline every action (data-open) is
 *   removed and the closed message shown;
 * - each timed text (data-timed) shows the step of the seconds left now, floored like
 *   the countdown the build rendered with;
 * - Mastodon links go to the server the visitor names once (kept in localStorage);
 * - the letter fills in as one types, tidied by the same rule as every tminus text.
 */
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("toolkit-data").textContent);
  const words = data.words;
  const STORE = "tminus.mastodon.instance";
  const BLANK = "______";

  // -- the countdown ------------------------------------------------------------------

  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];

  function secondsLeft() {
    return Math.floor((data.deadline - Date.now()) / 1000);
  }

  function showCountdown(left) {
    let rest = left;
    for (const [unit, size] of units) {
      const value = Math.floor(rest / size);
      rest -= value * size;
      const num = document.querySelector(`[data-unit="${unit}"]`);
      const label = document.querySelector(`[data-label="${unit}"]`);
      if (num) num.textContent = unit === "d" ? String(value) : String(value).padStart(2, "0");
      if (label) label.textContent = words.units[unit][value === 1 ? 1 : 0];
    }
  }

  function close() {
    document.querySelectorAll("[data-open]").forEach((el) => el.remove());
    document.getElementById("closed").hidden = false;
    document.body.dataset.state = "closed";
  }

  // -- texts that follow the countdown ---------------------------------------------

  const shown = {};

  function stepFor(steps, left) {
    for (const step of steps) if (step[0] <= left) return step[1];
    return steps[steps.length - 1][1];
  }

  function apply(el, field, step) {
    if (field === "text") el.textContent = step.text;
    else if (field === "copy") el.dataset.copy = step.copy;
    else if (field === "mastodon") {
      el.dataset.query = step.mastodon;
      mastodonLink(el);
    } else el.href = step[field];
  }

  function showTexts(left) {
    for (const [id, steps] of Object.entries(data.timed)) {
      const step = stepFor(steps, left);
      if (shown[id] === step) continue;
      shown[id] = step;
      document.querySelectorAll(`[data-timed="${id}"]`).forEach((el) => apply(el, el.dataset.field, step));
    }
  }

  function tick() {
    const left = secondsLeft();
    if (data.deadline - Date.now() <= 0) {
      close();
      return;
    }
    showCountdown(left);
    showTexts(left);
    // wake at the next whole second before the deadline, where the countdown changes
    const wait = (data.deadline - Date.now()) % 1000 || 1000;
    setTimeout(tick, wait);
  }

  // -- a small status line next to a button --------------------------------------------

  function say(status, text) {
    if (!status) return;
    status.textContent = text;
    clearTimeout(status.timer);
    status.timer = setTimeout(() => { status.textContent = ""; }, 4000);
  }

  async function copyText(text, status) {
    try {
      await navigator.clipboard.writeText(text);
      say(status, words.copied);
    } catch (e) {
      // file:// pages and old browsers have no clipboard API: select and copy
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "vh";
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand && document.execCommand("copy");
      area.remove();
      say(status, ok ? words.copied : words.copy_failed);
    }
  }

  // -- Mastodon: the visitor's own server -------------------------------------------

  function storedInstance() {
    try { return localStorage.getItem(STORE) || ""; } catch (e) { return ""; }
  }

  function cleanInstance(value) {
    let host = value.trim().toLowerCase().replace(/^https?:\/\//, "").replace(/\/.*$/, "");
    if (host.includes("@")) host = host.split("@").pop();   // @me@example.social
    return /^[a-z0-9-]+(\.[a-z0-9-]+)+(:[0-9]{1,5})?$/.test(host) ? host : "";
  }

  function mastodonLink(el) {
    const host = storedInstance();
    el.href = host ? `https://${host}/share?${el.dataset.query}` : "#mastodon-server";
    if (host) el.setAttribute("target", "_blank"); else el.removeAttribute("target");
  }

  function setUpMastodon() {
    const form = document.getElementById("mastodon-server");
    if (!form) return;
    const input = document.getElementById("mastodon-instance");
    const status = document.getElementById("mastodon-status");
    form.hidden = false;
    input.value = storedInstance();
    if (input.value) status.textContent = words.mastodon_saved.replace("{instance}", input.value);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const host = cleanInstance(input.value);
      if (!host) {
        status.textContent = words.mastodon_bad;
        input.focus();
        return;
      }
      try { localStorage.setItem(STORE, host); } catch (e) { /* private mode: this page only */ }
      input.value = host;
      status.textContent = words.mastodon_saved.replace("{instance}", host);
      document.querySelectorAll('[data-field="mastodon"]').forEach(mastodonLink);
    });
    document.querySelectorAll('[data-field="mastodon"]').forEach((el) => {
      el.hidden = false;
      mastodonLink(el);
      el.addEventListener("click", (event) => {
        if (storedInstance()) return;
        event.preventDefault();
        status.textContent = words.mastodon_needed;
        input.focus();
      });
    });
  }

  function setUpCopy() {
    document.querySelectorAll("button[data-copy]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => {
        copyText(button.dataset.copy, button.parentElement.querySelector(".status"));
      });
    });
  }

  // -- the letter -------------------------------------------------------------------

  // Python's str.isspace() characters and str.splitlines() breaks: the same tidy rule
  // as content/render.py, so the letter equals the template's own rendering.
  const WS = " \\t\\n\\r\\v\\f\\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
  const LEAD = new RegExp(`^[${WS}]+`);
  const TRAIL = new RegExp(`[${WS}]+$`);
  const BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

  function strip(text) {
    return text.replace(LEAD, "").replace(TRAIL, "");
  }

  function tidy(text) {
    if (!text.includes("\n") && text === strip(text)) return text;
    const stripped = strip(text);
    const lines = stripped === "" ? [] : stripped.split(BREAK).map((line) => line.replace(TRAIL, ""));
    return lines.join("\n").replace(/\n{3,}/g, "\n\n");
  }

  function fill(segments, values, empty) {
    return tidy(segments.map(([kind, value]) => (
      kind === "text" ? value : (values[value] || (empty === undefined ? "" : empty))
    )).join(""));
  }

  function mailto(to, subject, body) {
    const enc = (text) => encodeURIComponent(text.replace(/\r?\n/g, "\r\n"));
    return `mailto:${to || ""}?subject=${enc(subject)}&body=${enc(body)}`;
  }

  function setUpLetter() {
    const letter = data.letter;
    const form = document.getElementById("letter-form");
    if (!letter || !form) return;
    const inputs = Array.from(form.querySelectorAll("[data-blank]"));
    const copyButton = document.getElementById("letter-copy");
    const mail = document.getElementById("letter-mail");
    const status = document.getElementById("letter-status");
    const values = () => Object.fromEntries(inputs.map((i) => [i.dataset.blank, i.value]));
    const complete = () => inputs.every((i) => i.value.trim() !== "");

    function update() {
      const v = values();
      document.getElementById("letter-text").textContent = fill(letter.body, v, BLANK);
      document.getElementById("letter-subject").textContent = fill(letter.subject, v, BLANK);
      mail.href = mailto(letter.to, fill(letter.subject, v), fill(letter.body, v));
    }

    function ready() {
      if (complete()) return true;
      say(status, words.letter_missing);
      const empty = inputs.find((i) => i.value.trim() === "");
      if (empty) empty.focus();
      return false;
    }

    form.addEventListener("input", update);
    form.addEventListener("submit", (event) => event.preventDefault());
    copyButton.hidden = false;
    mail.hidden = false;
    copyButton.addEventListener("click", () => {
      if (ready()) copyText(fill(letter.body, values()), status);
    });
    mail.addEventListener("click", (event) => {
      if (!ready()) event.preventDefault();
    });
    update();
  }

  // For the tests and for anyone checking the page by hand: what the letter is now.
  window.tminusToolkit = {
    letter: () => (data.letter ? fill(data.letter.body, Object.fromEntries(
      Array.from(document.querySelectorAll("[data-blank]")).map((i) => [i.dataset.blank, i.value]))) : null),
    tidy,
  };

  if (data.deadline - Date.now() <= 0) {
    close();
    return;
  }
  setUpMastodon();
  setUpCopy();
  setUpLetter();
  tick();
})();
