// Times are sent in UTC (ISO 8601, Z); show each <time datetime> in the reader's local time.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("time[datetime]").forEach((element) => {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.textContent = moment.toLocaleString("zh-CN", { hour12: false });
      element.title = element.getAttribute("datetime");
    }
  });
});
