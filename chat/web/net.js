// The page's transports: one API session, and ways to receive a room's events over it.
//
// Every feed keeps a cursor per room (the last event id seen, and the server run it belongs
// to).  It resumes after that id when it reconnects, signs in again when the session is gone
// (401: expired, or the server restarted), and drops any event not newer than its cursor, so
// nothing is shown twice.  A new run (a changed epoch) starts the cursors from 0.

import { sleep } from "./dom.js";

// The server's --password, asked once (every session of the page shares it).
let serverPassword = null;
const PASSWORD_CODES = ["password_required", "bad_password"];

export const KINDS = ["message", "notice", "join", "part", "quit", "nick", "topic"];

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error;
  }
}

export class Session {
  constructor(nick) {
    this.nick = nick;
    this.token = null;
    this.epoch = null;
    this.renewing = null;
    this.listeners = [];   // called with (epochChanged) after every new sign-in
  }

  async api(method, path, body = undefined, { close = false, signal } = {}) {
    const headers = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const url = close ? path + (path.includes("?") ? "&" : "?") + "close=1" : path;
    // A request that closes its connection goes through the browser's other socket pool
    // (no credentials), so it never takes, and closes, a keep-alive connection of the others.
    const response = await fetch(url, {
      method, headers, signal, cache: "no-store", credentials: close ? "omit" : "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const data = text ? JSON.parse(text) : {};
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  async signIn() {
    this.token = null;
    let data;
    for (;;) {
      const tried = serverPassword;
      const body = tried === null ? { nick: this.nick } : { nick: this.nick, password: tried };
      try {
        data = await this.api("POST", "/api/sessions", body);
        break;
      } catch (err) {
        if (!(err instanceof ApiError) || !PASSWORD_CODES.includes(err.code)) throw err;
        if (serverPassword === tried) {  // nobody asked meanwhile (another lane may have)
          const given = window.prompt(err.code === "bad_password"
            ? "Wrong password. The server's password:" : "This server wants a password:");
          if (given === null) throw err;
          serverPassword = given;
        }
      }
    }
    this.token = data.token;
    this.nick = data.nick;
    const changed = this.epoch !== null && this.epoch !== data.epoch;
    this.epoch = data.epoch;
    for (const listener of this.listeners) await listener(changed);
    return data;
  }

  // Sign in again once, however many feeds found the session gone at the same time.
  renew() {
    if (!this.renewing) {
      this.renewing = (async () => {
        for (let delay = 250; ; delay = Math.min(delay * 2, 4000)) {
          try { return await this.signIn(); } catch (err) { await sleep(delay); }
        }
      })().finally(() => { this.renewing = null; });
    }
    return this.renewing;
  }

  async counters() {
    return (await this.api("GET", "/api/sessions/me")).counters;
  }

  quit(reason = "Leaving") {
    if (this.token) this.api("DELETE", "/api/sessions/me", { reason }).catch(() => {});
  }
}

// Cursor of one room: the last id seen in which run.
export class Cursor {
  constructor() { this.id = null; this.epoch = null; }
  accept(event, epoch) {
    if (this.epoch !== epoch) { this.epoch = epoch; this.id = 0; }
    if (this.id !== null && event.id <= this.id) return false;
    this.id = event.id;
    return true;
  }
  restarted(epoch) { if (this.epoch !== epoch) { this.epoch = epoch; this.id = 0; } }
}

// A room's events over HTTP: "sse", "longpoll", "poll" or "poll-close".
export class HttpFeed {
  constructor(session, kind, room, { onEvent, onState, interval = () => 1000 }) {
    Object.assign(this, { session, kind, room, onEvent, onState, interval });
    this.cursor = new Cursor();
    this.running = false;
    this.reconnects = 0;
    this.source = null;
    this.abort = null;
    this.failing = false;
  }

  async start() {
    this.running = true;
    await this.joinRoom();
    if (this.kind === "sse") this.openStream(); else this.loop();
  }

  stop() {
    this.running = false;
    if (this.source) { this.source.close(); this.source = null; }
    if (this.abort) this.abort.abort();
    this.onState("paused");
  }

  async joinRoom() {
    const joined = await this.session.api("POST", `/api/rooms/${this.room}/join`);
    this.cursor.restarted(joined.epoch);
    if (this.cursor.id === null) this.cursor.id = joined.last_id;
  }

  deliver(event, epoch) {
    if (this.cursor.accept(event, epoch)) this.onEvent(event);
  }

  failed(err) {
    if (!this.failing) { this.failing = true; this.onState("reconnecting"); }
    return err;
  }

  recovered() {
    if (this.failing) { this.failing = false; this.reconnects += 1; }
    this.onState("live");
  }

  async recover(err) {
    this.failed(err);
    if (err instanceof ApiError && err.status === 401) {
      await this.session.renew();
      await this.joinRoom();
    } else {
      await sleep(500);
    }
  }

  async loop() {
    const wait = this.kind === "longpoll" ? 25 : 0;
    while (this.running) {
      try {
        this.abort = new AbortController();
        const query = `since=${this.cursor.id}` + (wait ? `&wait=${wait}` : "");
        const answer = await this.session.api("GET", `/api/rooms/${this.room}/messages?${query}`,
          undefined, { close: this.kind === "poll-close", signal: this.abort.signal });
        this.cursor.restarted(answer.epoch);
        if (answer.gap && answer.next < this.cursor.id) this.cursor.id = 0;  // a new run
        for (const event of answer.events) this.deliver(event, answer.epoch);
        this.recovered();
        if (!wait) await sleep(this.interval());
      } catch (err) {
        if (!this.running) return;
        try { await this.recover(err); } catch (again) { await sleep(500); }
      }
    }
  }

  openStream() {
    if (!this.running) return;
    const url = `/api/rooms/${this.room}/events?token=${this.session.token}&since=${this.cursor.id}`;
    const source = this.source = new EventSource(url);
    const epoch = this.session.epoch;
    source.onopen = () => this.recovered();
    for (const kind of KINDS) {
      source.addEventListener(kind, (msg) => this.deliver(JSON.parse(msg.data), epoch));
    }
    source.onerror = async () => {
      if (source.readyState !== EventSource.CLOSED) { this.failed(); return; }
      // The server refused the stream (a 401 after a restart): sign in again and reopen.
      source.close();
      this.failed();
      try { await this.recover(new ApiError(401, null)); } catch (err) { await sleep(500); }
      this.openStream();
    };
  }
}

// All of a session's rooms over one WebSocket.  Its close ends the session on the server,
// so a reconnect signs in again and joins each room with "after" = its cursor.
export class WsLink {
  constructor(session, { onEvent, onState, onControl = () => {} }) {
    Object.assign(this, { session, onEvent, onState, onControl });
    this.rooms = new Map();   // room -> Cursor
    this.ws = null;
    this.running = false;
    this.reconnects = 0;
    this.refs = 0;
    this.waiting = new Map();
    this.opened = false;
  }

  async start() {
    if (this.ws) await this.session.renew();  // resuming after a pause: that close ended it
    this.running = true;
    this.open();
  }

  stop() {
    this.running = false;
    if (this.ws) this.ws.close(1000, "Paused");
    this.onState("paused");
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = this.ws = new WebSocket(`${scheme}://${location.host}/api/ws?token=${this.session.token}`);
    ws.onmessage = (msg) => this.receive(JSON.parse(msg.data));
    ws.onclose = () => this.closed(ws);
  }

  async closed(ws) {
    if (ws !== this.ws) return;
    for (const [, reject] of this.waiting.values()) reject(new Error("connection lost"));
    this.waiting.clear();
    if (!this.running) return;
    this.onState("reconnecting");
    await sleep(300);
    await this.session.renew();   // the server ended the session with the connection
    if (this.running) { this.opened = true; this.open(); }
  }

  receive(frame) {
    if (frame.kind) {
      const cursor = this.rooms.get(frame.room === null ? "" : frame.room);
      if (cursor && cursor.accept(frame, this.session.epoch)) this.onEvent(frame);
      return;
    }
    if (frame.type === "hello") { this.hello(frame); return; }
    const waiter = this.waiting.get(frame.ref);
    if (waiter) {
      this.waiting.delete(frame.ref);
      if (frame.type === "error") waiter[1](new Error(frame.message)); else waiter[0](frame);
    } else {
      this.onControl(frame);
    }
  }

  hello(frame) {
    if (this.opened) this.reconnects += 1;
    for (const [room, cursor] of this.rooms) {
      cursor.restarted(frame.epoch);
      this.send({ type: "join", room, after: cursor.id }).catch(() => {});
    }
    this.onState("live");
  }

  send(frame) {
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject(new Error("not connected"));
        return;
      }
      frame.ref = ++this.refs;
      this.waiting.set(frame.ref, [resolve, reject]);
      this.ws.send(JSON.stringify(frame));
    });
  }

  async join(room) {
    if (!this.rooms.has(room)) this.rooms.set(room, new Cursor());
    const cursor = this.rooms.get(room);
    const joined = await this.send({ type: "join", room, after: cursor.id });
    cursor.restarted(joined.epoch);
    if (cursor.id === null) cursor.id = joined.last_id;
    return joined;
  }

  async part(room) {
    this.rooms.delete(room);
    return this.send({ type: "part", room });
  }

  whenOpen() {
    return new Promise((resolve) => {
      const check = () => (this.ws && this.ws.readyState === WebSocket.OPEN
        ? resolve() : setTimeout(check, 20));
      check();
    });
  }
}
