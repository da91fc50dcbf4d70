// Images with a prompt (playground and arena): upload, paste or drop them; thumbnails with a remove
// button; a note on the chosen models that cannot take images. Exposed as window.maImages.attach(box).
(function () {
  "use strict";

  var TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];

  function size(bytes) {
    return bytes < 1024 * 1024 ? Math.max(1, Math.round(bytes / 1024)) + " KB" : (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function attach(box) {
    if (!box) return null;
    var maxBytes = parseInt(box.getAttribute("data-max-bytes"), 10);
    var maxImages = parseInt(box.getAttribute("data-max-images"), 10);
    var maxMb = box.getAttribute("data-max-mb");
    var takes = JSON.parse(box.getAttribute("data-takes-images") || "[]");
    var lists = box.getAttribute("data-model-lists");
    var drawsAtRandom = box.getAttribute("data-random") === "yes"; // an empty list: a model drawn at random
    var form = box.closest("form");
    var input = box.querySelector("input[type=file]");
    var thumbs = box.querySelector(".thumbs");
    var note = box.querySelector(".img-note");
    var errorBox = box.querySelector(".img-error");
    var images = []; // {url, name, size}

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    function add(file) {
      var name = file.name || "pasted image";
      if (TYPES.indexOf(file.type) < 0) {
        showError(name + " is not an image the models take (" + (file.type || "unknown type") + "). Choose a PNG, JPEG, WebP or GIF.");
        return;
      }
      if (file.size > maxBytes) {
        showError(name + " is " + size(file.size) + "; the playground takes images up to " + maxMb + " MB each. Scale it down or save it as JPEG.");
        return;
      }
      if (images.length >= maxImages) {
        showError("A prompt takes at most " + maxImages + " images: remove one before adding " + name + ".");
        return;
      }
      var reader = new FileReader();
      reader.addEventListener("load", function () {
        if (images.length >= maxImages) return;
        images.push({ url: reader.result, name: name, size: file.size });
        draw();
      });
      reader.addEventListener("error", function () { showError("The browser could not read " + name + "."); });
      reader.readAsDataURL(file);
    }

    function addAll(files) {
      showError("");
      Array.prototype.forEach.call(files || [], add);
    }

    function draw() {
      thumbs.textContent = "";
      images.forEach(function (image, i) {
        var item = document.createElement("li");
        var img = document.createElement("img");
        img.src = image.url;
        img.alt = "Attached image " + (i + 1) + ": " + image.name;
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "secondary";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove image " + (i + 1) + " (" + image.name + ")");
        remove.addEventListener("click", function () {
          images.splice(i, 1);
          showError("");
          draw();
          input.focus();
        });
        item.appendChild(img);
        item.appendChild(remove);
        thumbs.appendChild(item);
      });
      explain();
    }

    // Say which chosen models will not be asked while images are attached.
    function explain() {
      var chosen = [];
      var random = false;
      form.querySelectorAll(lists).forEach(function (select) {
        if (select.value) chosen.push(select.value); else random = random || drawsAtRandom;
      });
      if (!images.length) { note.hidden = true; note.textContent = ""; return; }
      var refused = chosen.filter(function (id) { return takes.indexOf(id) < 0; });
      var words = images.length === 1 ? "1 image attached" : images.length + " images attached";
      if (refused.length) {
        note.textContent = words + ". " + refused.join(", ") + (refused.length === 1 ? " cannot" : " each cannot") +
          " take images, so " + (refused.length === 1 ? "it is" : "they are") + " not sent the prompt; the others get the images.";
      } else {
        note.textContent = words + (random ? ": only models that take images are drawn at random." : ": every chosen model takes images.");
      }
      note.hidden = false;
    }

    input.addEventListener("change", function () { addAll(input.files); input.value = ""; });
    ["dragenter", "dragover"].forEach(function (name) {
      box.addEventListener(name, function (event) { event.preventDefault(); box.classList.add("over"); });
    });
    box.addEventListener("dragleave", function () { box.classList.remove("over"); });
    box.addEventListener("drop", function (event) {
      event.preventDefault();
      box.classList.remove("over");
      addAll(event.dataTransfer && event.dataTransfer.files);
    });
    document.addEventListener("paste", function (event) {
      var items = (event.clipboardData && event.clipboardData.items) || [];
      var files = [];
      Array.prototype.forEach.call(items, function (item) {
        if (item.kind === "file" && item.type.indexOf("image/") === 0) files.push(item.getAsFile());
      });
      if (!files.length) return; // text pastes as usual
      event.preventDefault();
      addAll(files);
    });
    form.addEventListener("change", function (event) { if (event.target.tagName === "SELECT") explain(); });

    return {
      images: function () { return images.map(function (image) { return image.url; }); },
      count: function () { return images.length; }
    };
  }

  window.maImages = { attach: attach };
})();
