// The kiosk's words, in English and Spanish. Keys are used by the screen modules and by
// data-i18n* attributes in kiosk.html; {name}-style placeholders are filled in
// by t(). Keep both languages complete: a missing Spanish key shows English.

export const STRINGS = {
  en: {
    lang_name: "English",
    lang_switch: "Español",
    lang_switch_label: "Cambiar a español",
    starting: "Starting…",
    noscript: "This kiosk needs JavaScript.",

    pair_title: "Pair this tablet",
    pair_lead: "Enter the one-time code shown on the organizer's kiosk page.",
    pair_code_label: "Pairing code",
    pair_button: "Pair",
    pair_working: "Pairing…",
    pair_format: "The code has 8 letters and digits.",
    pair_invalid: "That code isn't valid or was already used. Ask an organizer for a new one.",
    pair_expired: "That code has expired. Ask an organizer for a new one.",
    pair_offline: "Can't reach the server. Check the network and try again.",
    pair_failed: "Pairing didn't work ({code}). Try again.",

    status_online: "Online",
    status_offline: "Offline",
    status_syncing: "Sending…",
    waiting_one: "1 waiting to sync",
    waiting_other: "{n} waiting to sync",
    all_synced: "All check-ins sent",
    offline_banner: "Offline — check-ins are kept here and sent automatically.",

    idle_title: "Welcome!",
    idle_lead: "Check in here",
    idle_checkout_lead: "Leaving? Check out here",
    scan_title: "Scan your badge",
    scan_hint: "Hold your badge's QR code under the scanner",
    scan_camera: "Use the camera",
    find_title: "Find my name",
    find_hint: "Type your name, then tap it",
    walkin_title: "I'm new here",
    walkin_hint: "Not registered? It takes a minute",
    checkout_mode_on: "Leaving? Check out",
    checkout_mode_off: "Back to check-in",
    checkout_banner: "Checking out: scan your badge or find your name.",

    back: "Back",
    cancel: "Cancel",
    close: "Close",
    scanner_label: "Badge scanner input",

    search_title: "Find my name",
    search_label: "Your name",
    search_placeholder: "First or last name",
    search_min: "Type at least 2 letters of your name.",
    search_empty: "No one found. Check the spelling, or check in as new.",
    search_results: "{n} found",
    search_checked_in: "Checked in",
    search_walkin: "I'm not on the list",

    walkin_form_title: "Welcome! Tell us who you are",
    first_name: "First name",
    last_name: "Last name",
    email: "Email",
    consent: "Yes, email me about future events",
    offers: "I can offer",
    seeks: "I'm looking for",
    tags_hint: "Optional. Separate with commas, e.g. design, mentoring",
    walkin_submit: "Check me in",
    field_required: "Please fill this in.",
    field_email: "Please enter a valid email address.",
    field_invalid: "Please check this field.",

    welcome: "Welcome, {name}!",
    first_time: "First time here",
    welcome_back: "Welcome back, {ordinal} visit",
    checked_in: "You're checked in.",
    already_in: "You're already checked in, {name}",
    already_in_since: "Checked in at {time}",
    checked_out: "Thank you, {name}!",
    hours_today: "{hours} hours today · {total} hours in all",
    hours_only: "{hours} hours today",
    already_out: "{name}, you already checked out",
    provisional: "Saved on this tablet. It will be confirmed when we're back online.",
    checkout_offer: "Leaving?",
    checkout_now: "Check out",
    tap_to_continue: "Tap anywhere to continue",
    working: "One moment…",

    cannot_verify: "We can't verify this badge right now; please see the front desk",
    unknown_badge: "We don't recognize this badge. Please see the front desk.",
    wrong_event: "This badge is for a different event. Please see the front desk.",
    registration_cancelled: "This registration was cancelled. Please see the front desk.",
    checkin_not_open: "Check-in hasn't opened yet.",
    checkin_closed: "Check-in is closed.",
    not_checked_in: "{name}, you haven't checked in yet.",
    not_checked_in_anon: "You haven't checked in yet.",
    conflict: "Please scan again.",
    generic_error: "Something went wrong. Please see the front desk.",
    not_now: "Sorry",
    see_desk: "Please see the front desk",

    camera_title: "Show your badge to the camera",
    camera_starting: "Starting the camera…",
    camera_unavailable: "The camera can't scan on this tablet. Please use the scanner or find your name.",
    camera_denied: "The camera isn't available. Please use the scanner or find your name.",

    staff: "Staff",
    pin_title: "Staff only",
    pin_label: "Staff PIN",
    pin_ok: "Unlock",
    pin_wrong: "Wrong PIN.",
    pin_locked: "Too many tries. Wait {s} seconds.",
    pin_clear: "Clear",
    pin_delete: "Delete",
    staff_title: "Staff menu",
    staff_kiosk: "Kiosk",
    staff_event: "Event",
    staff_people: "Guest list",
    staff_people_value: "{n} people · updated {time}",
    staff_never: "never",
    staff_queue: "Waiting to sync",
    staff_refused: "Refused when synced",
    staff_sync: "Sync now",
    staff_refresh: "Refresh guest list",
    staff_fullscreen: "Full screen",
    staff_unpair: "Unpair this tablet",
    staff_exit: "Leave kiosk mode",
    unpair_confirm: "Unpair this tablet? It will need a new pairing code.",
    unpair_confirm_queue: "{n} check-ins haven't been sent yet and will be lost. Unpair anyway?",
    confirm_yes: "Yes, unpair",

    revoked_title: "This tablet was unpaired",
    revoked_lead: "An organizer revoked this kiosk. Ask for a new pairing code to use it again.",
    pair_again: "Pair again",
    stopped_title: "Kiosk mode is off",
    stopped_lead: "You can close this tab now.",
    resume: "Back to kiosk mode",
    leave_warning: "This is a check-in kiosk.",

    group_title: "Check in the others in your group too?",
    group_skip: "Not now",
    group_submit_one: "Check in 1 more",
    group_submit_other: "Check in {n} more",
    group_none: "Tick who is here",
    group_already_in: "Already checked in",
    group_waitlisted: "On the waitlist: please scan your own badge",
    group_offer_one: "You can check in 1 more person of your group.",
    group_offer_other: "You can check in {n} more people of your group.",
    group_welcome: "Welcome, everyone!",
    group_checked_in: "Checked in: {names}.",
    group_were_in: "Already in: {names}.",

    label_offers: "I can offer",
    label_seeks: "I'm looking for",
    label_first_time: "First time here",
    label_62mm: "62 mm continuous (cut at 100 mm)",
    label_4x3in: "4 × 3 in labels",
    label_test_first: "Alexandra",
    label_test_last: "Test label",
    staff_labels: "Name labels",
    staff_labels_on: "Printed at each check-in",
    staff_labels_off: "Off for this event",
    staff_label_size: "Label size on this kiosk",
    staff_test_label: "Print a test label",

    email_prompt_title: "Want to hear about future events?",
    email_prompt_lead: "We only have your name. Leave an email if you like; it's up to you.",
    email_prompt_skip: "No thanks",
    email_prompt_save: "Save my email",
    email_thanks: "Thank you!",
    email_saved: "Your email is saved.",
    email_saved_consent: "Your email is saved. We'll tell you about future events.",
    email_already_set: "We already have your email.",
    email_taken: "That email is already on our list for someone else. Please see the front desk.",
    email_later_title: "We couldn't save it just now",
    email_later: "Nothing was kept. We'll ask next time.",
  },

  es: {
    lang_name: "Español",
    lang_switch: "English",
    lang_switch_label: "Switch to English",
    starting: "Iniciando…",
    noscript: "Este quiosco necesita JavaScript.",

    pair_title: "Vincular esta tableta",
    pair_lead: "Escribe el código de un solo uso que aparece en la página de quioscos del organizador.",
    pair_code_label: "Código de vinculación",
    pair_button: "Vincular",
    pair_working: "Vinculando…",
    pair_format: "El código tiene 8 letras y números.",
    pair_invalid: "Ese código no es válido o ya se usó. Pide uno nuevo a un organizador.",
    pair_expired: "Ese código ha caducado. Pide uno nuevo a un organizador.",
    pair_offline: "No se puede conectar con el servidor. Revisa la red e inténtalo de nuevo.",
    pair_failed: "No se pudo vincular ({code}). Inténtalo de nuevo.",

    status_online: "En línea",
    status_offline: "Sin conexión",
    status_syncing: "Enviando…",
    waiting_one: "1 pendiente de enviar",
    waiting_other: "{n} pendientes de enviar",
    all_synced: "Todos los registros enviados",
    offline_banner: "Sin conexión: los registros se guardan aquí y se enviarán solos.",

    idle_title: "¡Te damos la bienvenida!",
    idle_lead: "Registra tu llegada aquí",
    idle_checkout_lead: "¿Te vas? Registra tu salida aquí",
    scan_title: "Escanea tu credencial",
    scan_hint: "Acerca el código QR de tu credencial al lector",
    scan_camera: "Usar la cámara",
    find_title: "Buscar mi nombre",
    find_hint: "Escribe tu nombre y tócalo",
    walkin_title: "Es mi primera vez",
    walkin_hint: "¿Sin inscripción? Solo toma un minuto",
    checkout_mode_on: "¿Te vas? Registra tu salida",
    checkout_mode_off: "Volver a la llegada",
    checkout_banner: "Registro de salida: escanea tu credencial o busca tu nombre.",

    back: "Volver",
    cancel: "Cancelar",
    close: "Cerrar",
    scanner_label: "Entrada del lector de credenciales",

    search_title: "Buscar mi nombre",
    search_label: "Tu nombre",
    search_placeholder: "Nombre o apellido",
    search_min: "Escribe al menos 2 letras de tu nombre.",
    search_empty: "No encontramos a nadie. Revisa cómo lo escribiste o regístrate aquí como nuevo asistente.",
    search_results: "{n} resultados",
    search_checked_in: "Ya llegó",
    search_walkin: "No estoy en la lista",

    walkin_form_title: "¡Hola! Cuéntanos quién eres",
    first_name: "Nombre",
    last_name: "Apellido",
    email: "Correo electrónico",
    consent: "Sí, envíenme correos sobre próximos eventos",
    offers: "Puedo ofrecer",
    seeks: "Estoy buscando",
    tags_hint: "Opcional. Separa con comas, p. ej. diseño, mentoría",
    walkin_submit: "Registrar mi llegada",
    field_required: "Completa este campo.",
    field_email: "Escribe un correo electrónico válido.",
    field_invalid: "Revisa este campo.",

    welcome: "¡Hola, {name}!",
    first_time: "Tu primera vez aquí",
    welcome_back: "Qué gusto verte de nuevo: {ordinal} visita",
    checked_in: "Tu llegada quedó registrada.",
    already_in: "{name}, tu llegada ya está registrada",
    already_in_since: "Llegada registrada a las {time}",
    checked_out: "¡Gracias, {name}!",
    hours_today: "{hours} horas hoy · {total} horas en total",
    hours_only: "{hours} horas hoy",
    already_out: "{name}, ya registraste tu salida",
    provisional: "Guardado en esta tableta. Se confirmará cuando vuelva la conexión.",
    checkout_offer: "¿Te vas?",
    checkout_now: "Registrar salida",
    tap_to_continue: "Toca la pantalla para continuar",
    working: "Un momento…",

    cannot_verify: "No podemos verificar esta credencial ahora; acude a recepción",
    unknown_badge: "No reconocemos esta credencial. Acude a recepción.",
    wrong_event: "Esta credencial es de otro evento. Acude a recepción.",
    registration_cancelled: "Esta inscripción fue cancelada. Acude a recepción.",
    checkin_not_open: "El registro de llegada aún no ha abierto.",
    checkin_closed: "El registro de llegada está cerrado.",
    not_checked_in: "{name}, aún no has registrado tu llegada.",
    not_checked_in_anon: "Aún no has registrado tu llegada.",
    conflict: "Vuelve a escanear, por favor.",
    generic_error: "Algo salió mal. Acude a recepción.",
    not_now: "Lo sentimos",
    see_desk: "Acude a recepción",

    camera_title: "Muestra tu credencial a la cámara",
    camera_starting: "Iniciando la cámara…",
    camera_unavailable: "La cámara no puede escanear en esta tableta. Usa el lector o busca tu nombre.",
    camera_denied: "La cámara no está disponible. Usa el lector o busca tu nombre.",

    staff: "Personal",
    pin_title: "Solo personal",
    pin_label: "PIN del personal",
    pin_ok: "Desbloquear",
    pin_wrong: "PIN incorrecto.",
    pin_locked: "Demasiados intentos. Espera {s} segundos.",
    pin_clear: "Borrar todo",
    pin_delete: "Borrar",
    staff_title: "Menú del personal",
    staff_kiosk: "Quiosco",
    staff_event: "Evento",
    staff_people: "Lista de invitados",
    staff_people_value: "{n} personas · actualizada {time}",
    staff_never: "nunca",
    staff_queue: "Pendientes de enviar",
    staff_refused: "Rechazados al enviar",
    staff_sync: "Enviar ahora",
    staff_refresh: "Actualizar la lista",
    staff_fullscreen: "Pantalla completa",
    staff_unpair: "Desvincular esta tableta",
    staff_exit: "Salir del modo quiosco",
    unpair_confirm: "¿Desvincular esta tableta? Necesitará un código nuevo.",
    unpair_confirm_queue: "{n} registros aún no se han enviado y se perderán. ¿Desvincular de todos modos?",
    confirm_yes: "Sí, desvincular",

    revoked_title: "Esta tableta fue desvinculada",
    revoked_lead: "Un organizador revocó este quiosco. Pide un código nuevo para volver a usarlo.",
    pair_again: "Vincular de nuevo",
    stopped_title: "El modo quiosco está desactivado",
    stopped_lead: "Ya puedes cerrar esta pestaña.",
    resume: "Volver al modo quiosco",
    leave_warning: "Este es un quiosco de registro.",

    group_title: "¿Registramos también la llegada del resto de tu grupo?",
    group_skip: "Ahora no",
    group_submit_one: "Registrar 1 más",
    group_submit_other: "Registrar {n} más",
    group_none: "Marca quién está aquí",
    group_already_in: "Llegada ya registrada",
    group_waitlisted: "En lista de espera: escanea tu propia credencial",
    group_offer_one: "Puedes registrar la llegada de 1 persona más de tu grupo.",
    group_offer_other: "Puedes registrar la llegada de {n} personas más de tu grupo.",
    group_welcome: "¡Bienvenidos!",
    group_checked_in: "Llegada registrada: {names}.",
    group_were_in: "Ya estaban: {names}.",

    label_offers: "Puedo ofrecer",
    label_seeks: "Busco",
    label_first_time: "Primera vez aquí",
    label_62mm: "Rollo continuo de 62 mm (corte a 100 mm)",
    label_4x3in: "Etiquetas de 4 × 3 pulgadas",
    label_test_first: "Alejandra",
    label_test_last: "Etiqueta de prueba",
    staff_labels: "Etiquetas con nombre",
    staff_labels_on: "Se imprimen en cada llegada",
    staff_labels_off: "Desactivadas en este evento",
    staff_label_size: "Tamaño de etiqueta en este quiosco",
    staff_test_label: "Imprimir una etiqueta de prueba",

    email_prompt_title: "¿Quieres enterarte de próximos eventos?",
    email_prompt_lead: "Solo tenemos tu nombre. Deja tu correo si quieres; tú decides.",
    email_prompt_skip: "No, gracias",
    email_prompt_save: "Guardar mi correo",
    email_thanks: "¡Gracias!",
    email_saved: "Tu correo está guardado.",
    email_saved_consent: "Tu correo está guardado. Te avisaremos de próximos eventos.",
    email_already_set: "Ya tenemos tu correo.",
    email_taken: "Ese correo ya está en nuestra lista para otra persona. Pasa por la recepción, por favor.",
    email_later_title: "No pudimos guardarlo ahora",
    email_later: "No se guardó nada. Te lo preguntaremos la próxima vez.",
  },
};

export const LANGUAGES = Object.keys(STRINGS);
let current = "en";

export function setLang(lang) {
  current = STRINGS[lang] ? lang : "en";
  document.documentElement.lang = current;
  return current;
}

export function getLang() {
  return current;
}

/** The string for key in the current language, with {placeholders} filled in. */
export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** "1 waiting" / "3 waiting": picks key_one or key_other. */
export function plural(key, n) {
  const rules = new Intl.PluralRules(current);
  const form = rules.select(n) === "one" ? "one" : "other";
  return t(`${key}_${form}`, { n });
}

/** 1st, 2nd, 3rd, 4th… (en); 1.ª… (es). */
export function ordinal(n) {
  if (current === "es") return `${n}.ª`;
  const rules = new Intl.PluralRules("en", { type: "ordinal" });
  const suffix = { one: "st", two: "nd", few: "rd", other: "th" }[rules.select(n)];
  return `${n}${suffix}`;
}

export function formatNumber(n) {
  return new Intl.NumberFormat(current, { maximumFractionDigits: 2 }).format(n);
}

/** Translate every element under root that carries data-i18n / -placeholder / -label. */
export function applyI18n(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.setAttribute("placeholder", t(el.dataset.i18nPlaceholder));
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) {
    el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  }
}
