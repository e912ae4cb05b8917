// Shared by the order pages: the session's CSRF token, and errors said in Chinese first with the server's English.
"use strict";

function cookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(name + "="));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

const ERRORS_ZH = {
  400: "请求有误", 401: "请重新登录", 403: "无权操作", 404: "未找到", 409: "状态不符，请刷新页面",
  413: "照片太大", 415: "不是 JPEG、PNG 或 WebP 照片", 422: "内容有误", 429: "操作太频繁，请稍后再试",
  503: "服务繁忙，请稍后再试",
};

// POST to this site with the session's CSRF token; resolves to the JSON body or throws a bilingual Error.
async function post(url, body) {
  const headers = { Accept: "application/json" };
  const csrf = cookie("ankang_csrf");
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (!(body instanceof FormData)) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method: "POST", headers, body: body instanceof FormData ? body : JSON.stringify(body) });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const english = (answer.error && answer.error.message) || `HTTP ${response.status}`;
    const chinese = ERRORS_ZH[response.status] || "出错了";
    throw new Error(english.includes(chinese) ? english : `${chinese}： ${english}`);
  }
  return answer;
}
