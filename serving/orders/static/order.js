// The order page's officer actions: POST a transition (with the review-page session's CSRF token), then reload.
function cookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

async function act(form, action) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const csrf = cookie("ankang_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const comment = form.elements.comment.value.trim();
  const response = await fetch(`/orders/${form.dataset.order}/transitions`, {
    method: "POST", headers, body: JSON.stringify({ action, ...(comment ? { comment } : {}) }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    document.getElementById("message").textContent = (body.error && body.error.message) || `HTTP ${response.status}`;
    return;
  }
  window.location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("act");
  if (!form) return;
  form.querySelectorAll("button[data-action]").forEach((button) =>
    button.addEventListener("click", () => act(form, button.dataset.action)));
});
