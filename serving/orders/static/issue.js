// The issue form: POST /v1/orders/ with the session's CSRF token (common.js), then open the new order.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("issue");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { photo_id: form.dataset.photo };
    for (const name of ["enterprise_id", "hazard", "site_id", "district", "assignee", "measures"]) {
      const value = form.elements[name].value.trim();
      if (value) body[name] = value;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const order = await post("/v1/orders/", body);
      window.location.assign(`/orders/${order.id}`);
    } catch (error) {
      const node = document.getElementById("message");
      node.textContent = error.message;
      node.classList.add("error");
      button.disabled = false;
    }
  });
});
