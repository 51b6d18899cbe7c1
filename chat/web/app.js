// The page's entry point: two views, Chat and Race, and the tabs between them.

import { $ } from "./dom.js";
import { ChatView } from "./chat.js";
import { RaceView } from "./race.js";

const chat = new ChatView((text) => { $("status").textContent = text; });
const race = new RaceView(() => chat.room || $("room").value.trim() || "lobby");

function show(name) {
  for (const view of ["chat", "race"]) {
    $(`view-${view}`).classList.toggle("hidden", view !== name);
    $(`tab-${view}`).classList.toggle("active", view === name);
  }
}

$("tab-chat").addEventListener("click", () => show("chat"));
$("tab-race").addEventListener("click", () => {
  show("race");
  if (!race.running) race.start().catch((err) => console.warn("race:", err.message));
});
window.chatlab = { chat, race };  // for the browser tests and the curious
