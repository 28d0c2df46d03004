// Drag and drop on the calendar (#14): a waiting post dragged to another day is moved there,
// keeping its time of day, through the same form the post's page sends without script
// (POST /posts/ID/reschedule with the session's CSRF token); the page then reloads and shows
// the outcome.  Served from this site only (CSP script-src 'self'); nothing here is needed
// for the calendar to work.
(function () {
  "use strict";
  var table = document.querySelector("table.calendar[data-csrf]");
  if (!table) {
    return;
  }
  var csrf = table.getAttribute("data-csrf");
  var dragged = null;

  function dayCell(event) {
    var node = event.target;
    if (node && node.nodeType !== 1) {
      node = node.parentElement;
    }
    return node && node.closest ? node.closest("td[data-day]") : null;
  }

  table.addEventListener("dragstart", function (event) {
    var node = event.target.nodeType === 1 ? event.target : event.target.parentElement;
    var item = node && node.closest ? node.closest("li.post[draggable='true']") : null;
    if (!item) {
      return;
    }
    dragged = item;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.getAttribute("data-post"));
  });

  table.addEventListener("dragover", function (event) {
    var cell = dayCell(event);
    if (dragged && cell) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      cell.classList.add("drop-target");
    }
  });

  table.addEventListener("dragleave", function (event) {
    var cell = dayCell(event);
    if (cell) {
      cell.classList.remove("drop-target");
    }
  });

  table.addEventListener("dragend", function () {
    dragged = null;
  });

  table.addEventListener("drop", function (event) {
    var cell = dayCell(event);
    var item = dragged;
    dragged = null;
    if (!item || !cell) {
      return;
    }
    event.preventDefault();
    cell.classList.remove("drop-target");
    if (cell.contains(item)) {
      return;
    }
    var body = new URLSearchParams();
    body.set("csrf_token", csrf);
    body.set("day", cell.getAttribute("data-day"));
    body.set("at", item.getAttribute("data-at"));
    table.setAttribute("aria-busy", "true");
    var reload = function () {
      window.location.reload();
    };
    // "manual": the answer is a redirect to the post's page, which would take the message
    // meant for this page.
    fetch("/posts/" + encodeURIComponent(item.getAttribute("data-post")) + "/reschedule", {
      method: "POST",
      body: body,
      credentials: "same-origin",
      redirect: "manual"
    }).then(reload, reload);
  });
})();
