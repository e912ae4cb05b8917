// Times are written in UTC (ISO 8601, with Z); show them in the reader's own time zone.
document.querySelectorAll("time[datetime]").forEach((element) => {
  const moment = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(moment.getTime())) {
    element.textContent = moment.toLocaleString("zh-CN", { hour12: false });
    element.title = element.getAttribute("datetime");
  }
});
