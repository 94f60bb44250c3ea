// The shop's one script: picking a currency in the header submits its
// form (without JavaScript, the form's Set button does). A file, not an
// inline handler, so that the pages' Content-Security-Policy can allow
// scripts from this origin only.
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("currency_code");
  if (select !== null) {
    select.addEventListener("change", () => select.form.submit());
  }
});
