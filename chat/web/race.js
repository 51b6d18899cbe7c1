// The race: one observer per lane in the current room, each its own session, and for every
// message how late each lane received it.  Costs come from the server's per-session meters
// (GET /api/sessions/me, which does not charge itself); reconnects are counted here.

import { drawCosts, drawDelays } from "./charts.js";
import { $, bytes, el, ms } from "./dom.js";
import { HttpFeed, Session, WsLink } from "./net.js";

export const LANES = [
  { key: "ws", short: "WebSocket", label: "WebSocket", color: "#2b6cb0", nick: "ws" },
  { key: "sse", short: "SSE", label: "SSE (EventSource)", color: "#38a169", nick: "sse" },
  { key: "longpoll", short: "long poll", label: "long poll", color: "#805ad5", nick: "lp" },
  { key: "poll", short: "poll", label: "short poll, keep-alive", color: "#dd6b20", nick: "poll" },
  { key: "poll-close", short: "poll+TCP", label: "short poll, new TCP each", color: "#c53030", nick: "pc" },
];
const SHOWN = 12, CHARTED = 60;

class Lane {
  constructor(spec, race, tag) {
    Object.assign(this, spec);
    this.race = race;
    this.session = new Session(`${spec.nick}_${tag}`);
    this.state = "starting";
    this.received = 0;
    this.lastDelay = null;
    this.counters = null;
    this.paused = false;
    this.feed = null;
  }

  async start(room) {
    await this.session.signIn();
    const handlers = { onEvent: (e) => this.event(e), onState: (s) => { this.state = s; } };
    if (this.key === "ws") {
      this.feed = new WsLink(this.session, handlers);
      await this.feed.start();
      await this.feed.whenOpen();
      await this.feed.join(room);
      this.state = "live";
    } else {
      handlers.interval = () => this.race.interval();
      this.feed = new HttpFeed(this.session, this.key, room, handlers);
      await this.feed.start();
    }
  }

  event(event) {
    if (event.kind !== "message") return;
    const delay = Math.max(0, performance.timeOrigin + performance.now() - event.ts * 1000);
    this.received += 1;
    this.lastDelay = delay;
    this.race.arrived(this, event, delay);
  }

  togglePause() {
    this.paused = !this.paused;
    if (this.paused) this.feed.stop(); else this.feed.start();
  }

  async refresh() {
    try { this.counters = await this.session.counters(); } catch (err) { /* reconnecting */ }
  }

  stop() {
    if (this.feed) this.feed.stop();
    if (this.key !== "ws") this.session.quit("Race over");
  }
}

export class RaceView {
  constructor(roomOf) {
    this.roomOf = roomOf;
    this.lanes = [];
    this.messages = new Map();  // "epoch:id" -> {id, nick, text, delays}
    this.order = [];
    this.sender = null;
    this.sendTimer = null;
    this.sent = 0;
    this.timer = null;
    this.running = false;
    $("race-start").addEventListener("click", () => this.start().catch((e) => console.warn(e)));
    $("race-stop").addEventListener("click", () => this.stop());
    $("race-rate").addEventListener("change", () => this.schedule());
    $("msg-head").append(el("tr", {}, el("th", {}, "id"), el("th", {}, "from"), el("th", {}, "text"),
      ...LANES.map((lane) => el("th", {}, lane.short))));
  }

  interval() { return Math.max(50, Number($("race-interval").value) || 1000); }

  async start() {
    this.stop();
    this.running = true;
    const room = this.roomOf();
    $("race-room").textContent = room;
    const tag = Math.random().toString(36).slice(2, 6);
    this.lanes = LANES.map((spec) => new Lane(spec, this, tag));
    this.messages.clear();
    this.order = [];
    this.rows();
    await Promise.all(this.lanes.map((lane) => lane.start(room)));
    this.sender = new Session(`send_${tag}`);
    await this.sender.signIn();
    await this.sender.api("POST", `/api/rooms/${room}/join`);
    this.room = room;
    this.schedule();
    this.timer = setInterval(() => this.tick(), 1000);
    this.tick();
  }

  stop() {
    this.running = false;
    clearInterval(this.timer);
    clearInterval(this.sendTimer);
    for (const lane of this.lanes) lane.stop();
    if (this.sender) this.sender.quit("Race over");
    this.sender = null;
  }

  schedule() {
    clearInterval(this.sendTimer);
    const rate = Number($("race-rate").value) || 0;
    if (rate > 0 && this.sender) {
      this.sendTimer = setInterval(() => {
        this.sent += 1;
        this.sender.api("POST", `/api/rooms/${this.room}/messages`, { text: `race ${this.sent}` })
          .catch(() => {});
      }, 1000 / rate);
    }
  }

  arrived(lane, event, delay) {
    const key = `${lane.session.epoch}:${event.id}`;
    let message = this.messages.get(key);
    if (!message) {
      message = { id: event.id, nick: event.nick, text: event.text, delays: {} };
      this.messages.set(key, message);
      this.order.push(key);
      if (this.order.length > 500) this.messages.delete(this.order.shift());
    }
    if (message.delays[lane.key] === undefined) message.delays[lane.key] = delay;
    this.dirty = true;
  }

  async tick() {
    for (const lane of this.lanes) await lane.refresh();  // one at a time: one pooled connection
    this.rows();
    const recent = this.order.slice(-CHARTED).map((key) => this.messages.get(key));
    drawDelays($("delay-chart"), LANES, recent);
    drawCosts($("cost-chart"), this.lanes);
    $("msg-rows").replaceChildren(...this.order.slice(-SHOWN).reverse().map((key) => {
      const m = this.messages.get(key);
      return el("tr", {}, el("td", {}, String(m.id)), el("td", {}, m.nick), el("td", { class: "text" }, m.text),
        ...LANES.map((lane) => el("td", {}, ms(m.delays[lane.key]))));
    }));
  }

  rows() {
    $("lane-rows").replaceChildren(...this.lanes.map((lane) => {
      const c = lane.counters || { requests: 0, empty: 0, bytes_in: 0, bytes_out: 0, connections: 0, heartbeats: 0 };
      const pause = el("button", { type: "button", "data-lane": lane.key }, lane.paused ? "resume" : "pause");
      pause.addEventListener("click", () => { lane.togglePause(); this.rows(); });
      const reconnects = lane.feed ? lane.feed.reconnects : 0;
      return el("tr", { "data-lane": lane.key },
        el("td", { class: "lane" }, lane.label), el("td", {}, lane.paused ? "paused" : lane.state),
        el("td", {}, ms(lane.lastDelay)), el("td", { class: "received" }, String(lane.received)),
        el("td", { class: "requests" }, String(c.requests)), el("td", { class: "empty" }, String(c.empty)),
        el("td", {}, bytes(c.bytes_in)), el("td", {}, bytes(c.bytes_out)),
        el("td", { class: "connections" }, String(c.connections)), el("td", {}, String(c.heartbeats)),
        el("td", { class: "reconnects" }, String(reconnects)), el("td", {}, pause));
    }));
  }
}

