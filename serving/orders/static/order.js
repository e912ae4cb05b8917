// The order page's actions: officers verify, reject, close; the enterprise starts and uploads its proof
// photo with a comment. Each posts with the session's CSRF token (common.js), then reloads the page.
"use strict";

function say(text, isError = true) {
  const node = document.getElementById("message");
  node.textContent = text;
  node.classList.toggle("error", isError);
}

async function act(form, action, button) {
  const comment = form.elements.comment ? form.elements.comment.value.trim() : "";
  button.disabled = true;
  try {
    await post(`/orders/${form.dataset.order}/transitions`, { action, ...(comment ? { comment } : {}) });
    window.location.reload();
  } catch (error) {
    say(error.message);
    button.disabled = false;
  }
}

async function submitProof(form) {
  const button = form.querySelector("button[type=submit]");
  if (!form.elements.photo.files.length) { say("请选择整改后照片。 Choose the proof photo."); return; }
  const data = new FormData();
  data.append("photo", form.elements.photo.files[0]);
  const comment = form.elements.comment.value.trim();
  if (comment) data.append("comment", comment);
  button.disabled = true;
  say("正在上传并检查照片… Uploading and checking the photo…", false);
  try {
    await post(`/v1/orders/${form.dataset.order}/proof`, data);
    window.location.reload();
  } catch (error) {
    say(error.message);
    button.disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("act");
  if (form) {
    form.querySelectorAll("button[data-action]").forEach((button) =>
      button.addEventListener("click", () => act(form, button.dataset.action, button)));
  }
  const proof = document.getElementById("proof");
  if (proof) proof.addEventListener("submit", (event) => { event.preventDefault(); submitProof(proof); });
});
