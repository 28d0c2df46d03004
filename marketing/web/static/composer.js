// The composer's live check: when a field changes, post the form to the server's check
// (the same rules and words as `marketing campaign validate`) and show each problem next
// to its field.  Without this script the form still submits and shows the same problems.
(function () {
  "use strict";
  var form = document.getElementById("composer");
  if (!form) { return; }
  var timer = null;
  var running = 0;

  function clear() {
    var lists = form.querySelectorAll(".field-problems");
    for (var i = 0; i < lists.length; i++) { lists[i].textContent = ""; }
    var boxes = form.querySelectorAll(".composer-field.has-problem");
    for (var j = 0; j < boxes.length; j++) { boxes[j].classList.remove("has-problem"); }
  }

  function item(problem) {
    var li = document.createElement("li");
    li.textContent = "⚠ " + problem.message + (problem.hint ? " — " + problem.hint : "");
    return li;
  }

  function show(answer) {
    clear();
    var loose = document.getElementById("composer-loose");
    var box = document.getElementById("composer-problems");
    if (loose) { loose.textContent = ""; }
    var any = false;
    Object.keys(answer.problems || {}).forEach(function (name) {
      var holder = name ? form.querySelector('.composer-field[data-field="' + name + '"]') : null;
      var list = holder ? holder.querySelector(".field-problems") : loose;
      if (holder) { holder.classList.add("has-problem"); }
      answer.problems[name].forEach(function (p) {
        if (list) { list.appendChild(item(p)); any = true; }
      });
    });
    if (box) { box.hidden = !(loose && loose.children.length); }
    form.setAttribute("data-checked", answer.ok ? "ok" : "problems");
    return any;
  }

  function check() {
    var data = new FormData(form);
    running += 1;
    form.setAttribute("data-checking", "yes");
    fetch(form.getAttribute("data-check"), {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.ok ? response.json() : null;
    }).then(function (answer) {
      running -= 1;
      if (answer && running === 0) { show(answer); }
      if (running === 0) { form.removeAttribute("data-checking"); }
    }).catch(function () {
      running -= 1;
      if (running === 0) { form.removeAttribute("data-checking"); }
    });
  }

  form.addEventListener("change", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, 300);
  });

  var counters = form.querySelectorAll("input[data-count]");
  for (var k = 0; k < counters.length; k++) {
    (function (input) {
      var note = document.createElement("small");
      note.className = "muted counter";
      input.parentNode.insertBefore(note, input.nextSibling);
      function count() {
        note.textContent = Array.from(input.value).length + " / " + input.getAttribute("data-count");
      }
      input.addEventListener("input", count);
      count();
    })(counters[k]);
  }

  var previews = document.getElementById("previews");
  var toggles = document.querySelectorAll(".preview-width");
  for (var t = 0; t < toggles.length; t++) {
    toggles[t].addEventListener("click", function (event) {
      event.preventDefault();
      var width = this.getAttribute("data-width");
      previews.classList.remove("previews-phone", "previews-desktop");
      previews.classList.add("previews-" + width);
      var radio = form.querySelector('input[name="width"][value="' + width + '"]');
      if (radio) { radio.checked = true; }
    });
  }
})();
