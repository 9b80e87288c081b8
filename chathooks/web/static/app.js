// The only hand-written script: copy and reveal buttons, closing a request panel, and
// moving focus to what was just opened (or back to the reply box). Everything else works without JavaScript (htmx
// adds live refresh and in-page results).
document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const field = document.querySelector(copy.dataset.copy);
    if (!field) return;
    const label = copy.textContent;
    try {
      await navigator.clipboard.writeText(field.value);
    } catch {
      field.select();
      document.execCommand("copy");
    }
    copy.textContent = "Copied";
    setTimeout(() => { copy.textContent = label; }, 1500);
    return;
  }
  const reveal = event.target.closest("[data-reveal]");
  if (reveal) {
    const field = document.querySelector(reveal.dataset.reveal);
    if (!field) return;
    const shown = field.type === "password";
    field.type = shown ? "text" : "password";
    reveal.textContent = shown ? "Hide" : "Reveal";
    return;
  }
  const clear = event.target.closest("[data-clear]");
  if (clear) {
    const panel = document.querySelector(clear.dataset.clear);
    if (panel) panel.replaceChildren();
  }
});

// A reply just sent (or refused): back in the reply box, ready for the next one.
document.addEventListener("htmx:afterSettle", (event) => {
  if (event.target.id === "reply") document.getElementById("reply-text")?.focus();
});

// A request opened from the activity: focus its heading, so keyboard and screen reader
// users land on what they asked for.
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.target.id === "request") {
    const heading = event.target.querySelector("h3[tabindex]");
    if (heading) heading.focus({ preventScroll: true });
  }
});
