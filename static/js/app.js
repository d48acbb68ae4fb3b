// SFD Synchro behaviours. No inline script in templates: the Content-Security-Policy forbids it.
(function () {
  "use strict";

  // A header box that ticks every row box of its table ([data-select-all] / [data-select-item]).
  function syncHeader(scope) {
    var header = scope.querySelector("[data-select-all]");
    if (!header) return;
    var items = scope.querySelectorAll("[data-select-item]");
    var checked = scope.querySelectorAll("[data-select-item]:checked");
    header.checked = items.length > 0 && checked.length === items.length;
    header.indeterminate = checked.length > 0 && checked.length < items.length;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var scope = target.closest("[data-select-all-scope]");
    if (!scope) return;
    if (target.matches("[data-select-all]")) {
      scope.querySelectorAll("[data-select-item]").forEach(function (box) {
        box.checked = target.checked;
      });
      scope.dispatchEvent(new CustomEvent("selection-changed", { bubbles: true }));
    } else if (target.matches("[data-select-item]")) {
      syncHeader(scope);
      scope.dispatchEvent(new CustomEvent("selection-changed", { bubbles: true }));
    }
  });

  // Buttons that ask before acting: <button data-confirm="…">.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Native <progress> bars take their value from data attributes (no inline style).
  function paintProgress(root) {
    (root || document).querySelectorAll("progress[data-value]").forEach(function (bar) {
      bar.value = Number(bar.getAttribute("data-value"));
      bar.max = Number(bar.getAttribute("data-max") || 100);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { paintProgress(document); });
  document.addEventListener("htmx:afterSwap", function (event) { paintProgress(event.target); });
})();

// « Ajouter une ligne »: clone the formset's empty form from its <template>.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-line]");
    if (!button) return;
    var prefix = button.getAttribute("data-prefix");
    var total = document.getElementById("id_" + prefix + "-TOTAL_FORMS");
    var template = document.getElementById("empty-line");
    var body = document.querySelector("[data-formset-body]");
    if (!total || !template || !body) return;
    var index = Number(total.value);
    var html = template.innerHTML.replace(/__prefix__/g, String(index));
    body.insertAdjacentHTML("beforeend", html);
    total.value = String(index + 1);
  });
})();

// Visuel Synchronisations: « Tout cocher » selects everything matching the filter, across pages.
(function () {
  "use strict";
  function apply(box) {
    var form = box.closest("form");
    if (!form) return;
    form.querySelectorAll("[data-select-item], [data-select-all]").forEach(function (item) {
      if (box.checked) item.checked = true;
      item.disabled = box.checked;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-select-all-matching]")) apply(event.target);
  });
  document.addEventListener("htmx:afterSwap", function () {
    var box = document.querySelector("[data-select-all-matching]");
    if (box) apply(box);
  });
})();

// SYNCHRONISATION: the day of the week only matters for « CHAQUE SEMAINE ».
(function () {
  "use strict";
  function sync() {
    var frequency = document.querySelector("[data-frequency]");
    var weekday = document.querySelector("[data-weekday]");
    if (frequency && weekday) weekday.hidden = frequency.value !== "weekly";
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-frequency]")) sync();
  });
  document.addEventListener("DOMContentLoaded", sync);
})();

// The document beside the invoice form: page N/M and zoom (+/−), the pages rendered by the server.
(function () {
  "use strict";
  var ZOOMS = [50, 75, 100, 125, 150, 200, 300];
  function setup(viewer) {
    var pages = Number(viewer.getAttribute("data-pages")) || 1;
    var url = viewer.getAttribute("data-page-url");
    var image = viewer.querySelector("[data-viewer-image]");
    var position = viewer.querySelector("[data-viewer-position]");
    var level = viewer.querySelector("[data-viewer-zoom-level]");
    var page = 1;
    var zoom = 2;
    function show() {
      image.src = url.replace("/0/", "/" + page + "/");
      image.alt = "Page " + page + " / " + pages;
      position.textContent = "Page " + page + " / " + pages;
      image.style.width = ZOOMS[zoom] + "%";
      level.textContent = ZOOMS[zoom] + " %";
      viewer.querySelector("[data-viewer-prev]").disabled = page <= 1;
      viewer.querySelector("[data-viewer-next]").disabled = page >= pages;
    }
    viewer.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) return;
      if (button.hasAttribute("data-viewer-prev") && page > 1) page -= 1;
      else if (button.hasAttribute("data-viewer-next") && page < pages) page += 1;
      else if (button.hasAttribute("data-viewer-zoom")) {
        zoom = Math.max(0, Math.min(ZOOMS.length - 1, zoom + Number(button.getAttribute("data-viewer-zoom"))));
      } else return;
      show();
    });
    show();
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-viewer]").forEach(setup);
  });
})();
