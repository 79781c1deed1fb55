/* Pre-fill the new event's time zone with this device's when the organization has no events yet. */
const zone = document.getElementById("f-timezone");
if (zone && !zone.value && window.Intl) zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
