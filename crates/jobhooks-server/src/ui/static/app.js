// jobhooks: confirmation dialogs for job buttons, and a result page that follows its run.
// Every page works without this script: buttons that ask for confirmation link to a confirmation
// page, and a running result's page reloads itself.
"use strict";

function setUpConfirmations() {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const form = document.getElementById("confirm-form");
  const text = document.getElementById("confirm-text");
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());
  for (const link of document.querySelectorAll("a[data-confirm]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      text.textContent = link.dataset.confirm;
      form.action = link.dataset.press;
      dialog.showModal();
      document.getElementById("confirm-ok").focus();
    });
  }
}

async function followResult() {
  const box = document.getElementById("result");
  if (!box) return;
  const url = box.dataset.url;
  let failures = 0;
  for (;;) {
    const body = box.querySelector(".result-body");
    if (!body || body.dataset.final === "true") return;
    const seen = encodeURIComponent(body.dataset.seen);
    try {
      const answer = await fetch(`${url}?fragment=true&wait=20&seen=${seen}`, { credentials: "same-origin" });
      if (answer.redirected || !answer.ok) throw new Error(`status ${answer.status}`);
      box.innerHTML = await answer.text();
      failures = 0;
    } catch (error) {
      failures += 1;
      if (failures > 5) { window.location.reload(); return; }
      await new Promise((resolve) => setTimeout(resolve, 1000 * failures));
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setUpConfirmations();
  followResult();
});
