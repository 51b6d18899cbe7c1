// The chat view: sign in, join rooms, talk, see members, topic and presence, over the
// transport picked in the form (the same feeds the race uses).

import { $, clock, el, ms } from "./dom.js";
import { HttpFeed, Session, WsLink } from "./net.js";

const PRESENCE = {
  join: (e) => `${e.nick} joined`,
  part: (e) => `${e.nick} left` + (e.text ? ` (${e.text})` : ""),
  quit: (e) => `${e.nick} quit (${e.text})`,
  nick: (e) => `${e.nick} is now ${e.text}`,
  topic: (e) => `${e.nick} set the topic: ${e.text}`,
};

export class ChatView {
  constructor(onStatus) {
    this.onStatus = onStatus;
    this.session = null;
    this.kind = "ws";
    this.link = null;          // WsLink (ws) ...
    this.feeds = new Map();    // ... or room -> HttpFeed
    this.logs = new Map();     // room -> [li]
    this.current = null;
    $("connect").addEventListener("click", () => this.signIn().catch((e) => this.error(e)));
    $("join").addEventListener("click", () => this.join($("room").value.trim()).catch((e) => this.error(e)));
    $("say-form").addEventListener("submit", (ev) => { ev.preventDefault(); this.say().catch((e) => this.error(e)); });
    $("set-topic").addEventListener("click", () => this.setTopic().catch((e) => this.error(e)));
    $("nick").value = "guest" + Math.floor(Math.random() * 9000 + 1000);
    setInterval(() => this.refreshMembers(), 3000);
  }

  get room() { return this.current; }

  async signIn() {
    if (this.session) this.leave();
    this.kind = $("transport").value;
    this.session = new Session($("nick").value.trim());
    await this.session.signIn();
    if (this.kind === "ws") {
      this.link = new WsLink(this.session, { onEvent: (e) => this.show(e), onState: (s) => this.state(s) });
      this.link.start();
      await this.link.whenOpen();
    }
    this.state("signed in");
    await this.join($("room").value.trim() || "lobby");
  }

  leave() {
    if (this.link) { this.link.stop(); this.link = null; }
    for (const feed of this.feeds.values()) feed.stop();
    this.feeds.clear();
    this.session.quit("Switching transport");
    this.session = null;
  }

  state(text) {
    this.onStatus(`${this.session ? this.session.nick : ""} · ${this.kind} · ${text}`);
  }

  async join(room) {
    if (!this.session) await this.signIn();
    if (!room) return;
    if (this.kind === "ws") {
      await this.link.join(room);
    } else if (!this.feeds.has(room)) {
      const feed = new HttpFeed(this.session, this.kind, room, {
        onEvent: (e) => this.show(e), onState: (s) => this.state(s),
      });
      this.feeds.set(room, feed);
      await feed.start();
    }
    if (!this.logs.has(room)) this.logs.set(room, []);
    this.select(room);
  }

  select(room) {
    this.current = room;
    const tabs = $("rooms");
    tabs.replaceChildren(...[...this.logs.keys()].map((name) => {
      const button = el("button", { type: "button", class: name === room ? "current" : "" }, "#" + name);
      button.addEventListener("click", () => this.select(name));
      return button;
    }));
    $("log").replaceChildren(...this.logs.get(room));
    $("race-room").textContent = room;
    this.refreshMembers();
  }

  show(event) {
    const room = event.room;
    if (!this.logs.has(room)) this.logs.set(room, []);
    const delay = performance.timeOrigin + performance.now() - event.ts * 1000;
    const describe = PRESENCE[event.kind];
    const line = describe
      ? el("li", { class: "presence" }, `${clock(event.ts)} * ${describe(event)}`)
      : el("li", {}, `${clock(event.ts)} <${event.nick}> ${event.text} `,
        el("span", { class: "delay" }, `(+${ms(delay)})`));
    const lines = this.logs.get(room);
    lines.push(line);
    if (lines.length > 500) lines.shift();
    if (event.kind === "topic") this.topic = event.text;
    if (room === this.current) {
      const log = $("log");
      log.append(line);
      log.scrollTop = log.scrollHeight;
      if (event.kind === "topic") $("topic").textContent = event.text;
      if (describe) this.refreshMembers();
    }
  }

  async say() {
    const text = $("say").value;
    if (!text || !this.current) return;
    if (this.kind === "ws") await this.link.send({ type: "say", room: this.current, text });
    else await this.session.api("POST", `/api/rooms/${this.current}/messages`, { text });
    $("say").value = "";
  }

  async setTopic() {
    const topic = $("topic-input").value;
    if (this.kind === "ws") await this.link.send({ type: "topic", room: this.current, topic });
    else await this.session.api("POST", `/api/rooms/${this.current}/topic`, { topic });
    $("topic-input").value = "";
  }

  async refreshMembers() {
    if (!this.session || !this.current) return;
    try {
      const room = this.current;
      const answer = await this.session.api("GET", `/api/rooms/${room}/members`);
      if (room !== this.current) return;
      $("members").replaceChildren(...answer.members.map((m) =>
        el("li", {}, (m.op ? "@" : "") + m.nick + " ", el("span", { class: "transport" }, m.transport))));
      const rooms = await this.session.api("GET", "/api/rooms");
      const info = rooms.rooms.find((r) => r.room.toLowerCase() === room.toLowerCase());
      $("topic").textContent = info ? info.topic : "";
    } catch (err) { /* the feed reports connection trouble */ }
  }

  error(err) {
    const line = el("li", { class: "presence" }, `!! ${err.message}`);
    $("log").append(line);
  }
}
