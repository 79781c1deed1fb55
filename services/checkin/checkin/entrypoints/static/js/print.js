/* Buttons marked data-print open the browser's print dialog (no inline onclick under the CSP). */
for (const button of document.querySelectorAll("button[data-print]")) {
  button.addEventListener("click", () => window.print());
}
