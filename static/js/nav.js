// On a phone the main menu folds behind a "Menu" button, so the header is
// one row. Without JavaScript the menu simply stays open.
(function () {
  const button = document.querySelector(".nav-toggle");
  const nav = document.getElementById("main-nav");
  if (!button || !nav) return;
  document.documentElement.classList.add("nav-folds");
  button.addEventListener("click", function () {
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("is-open", open);
  });
})();
