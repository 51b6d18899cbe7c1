// The race's two pictures, drawn as SVG by our own code: delay per message per lane (log
// scale), and what each lane paid per message received (requests, bytes, TCP connections).

import { svg } from "./dom.js";

const W = 720, H = 300, LEFT = 64, RIGHT = 16, TOP = 16, BOTTOM = 40;
const TICKS = [[0.1, "0.1 ms"], [1, "1 ms"], [10, "10 ms"], [100, "100 ms"], [1000, "1 s"], [10000, "10 s"]];

export function drawDelays(root, lanes, messages) {
  root.replaceChildren();
  const lo = Math.log10(0.1), hi = Math.log10(10000);
  const y = (msec) => TOP + (H - TOP - BOTTOM) * (1 - (Math.log10(Math.max(0.1, Math.min(10000, msec))) - lo) / (hi - lo));
  const n = Math.max(messages.length, 2);
  const x = (i) => LEFT + (W - LEFT - RIGHT) * (i / (n - 1));
  for (const [value, label] of TICKS) {
    root.append(svg("line", { x1: LEFT, x2: W - RIGHT, y1: y(value), y2: y(value), stroke: "#e2e8f0" }));
    root.append(svg("text", { x: LEFT - 6, y: y(value) + 4, "text-anchor": "end" }, label));
  }
  root.append(svg("text", { x: (LEFT + W) / 2, y: H - 8, "text-anchor": "middle" },
    `the last ${messages.length} messages, oldest left`));
  for (const lane of lanes) {
    const points = [];
    messages.forEach((m, i) => {
      const delay = m.delays[lane.key];
      if (delay !== undefined) points.push([x(i), y(delay)]);
    });
    if (points.length > 1) {
      root.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "),
        fill: "none", stroke: lane.color, "stroke-width": 2.5, "stroke-opacity": 0.8 }));
    }
    for (const [px, py] of points) root.append(svg("circle", { cx: px, cy: py, r: 3.5, fill: lane.color }));
  }
  lanes.forEach((lane, i) => {
    const lx = LEFT + 8 + i * 128;
    root.append(svg("rect", { x: lx, y: TOP, width: 12, height: 12, fill: lane.color }));
    root.append(svg("text", { x: lx + 16, y: TOP + 11 }, lane.short));
  });
}

const MEASURES = [
  ["requests", (c) => c.requests, (v) => v.toFixed(2)],
  ["KiB", (c) => (c.bytes_in + c.bytes_out) / 1024, (v) => v.toFixed(2)],
  ["TCP conns", (c) => c.connections, (v) => v.toFixed(2)],
];

export function drawCosts(root, lanes) {
  root.replaceChildren();
  const panel = (W - LEFT) / MEASURES.length;
  MEASURES.forEach(([name, measure, format], p) => {
    const values = lanes.map((lane) => (lane.counters && lane.received
      ? measure(lane.counters) / lane.received : 0));
    const top = Math.max(...values, 1e-9);
    const x0 = LEFT / 2 + p * panel, bar = (panel - 24) / lanes.length;
    root.append(svg("text", { x: x0 + panel / 2 - 12, y: H - 8, "text-anchor": "middle" }, `${name} per message`));
    values.forEach((value, i) => {
      const height = (H - TOP - BOTTOM - 20) * (value / top);
      const bx = x0 + i * bar, by = H - BOTTOM - height;
      root.append(svg("rect", { x: bx + 2, y: by, width: bar - 4, height: Math.max(height, 1), fill: lanes[i].color }));
      root.append(svg("text", { x: bx + bar / 2, y: by - 4, "text-anchor": "middle" }, format(value)));
    });
  });
}
