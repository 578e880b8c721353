"""The supporters' page's own wording, in each language it can be built in.

A campaign writes what supporters say (the suggested posts, the call script, the
letter); the page around it (buttons, headings, the countdown's units, dates) is worded
here. A toolkit language needs an entry in `WORDS`: adding a language is adding one
dict below, with every key the English one has (a test checks that).
"""

from __future__ import annotations

from datetime import datetime

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "language_name": "English",
        "time_left": "Time left",
        "days": "days", "day": "day", "hours": "hours", "hour": "hour",
        "minutes": "minutes", "minute": "minute", "seconds": "seconds", "second": "second",
        "closes": "Closes {when}",
        "closed_title": "This campaign has closed",
        "closed_default": "The deadline passed on {when}. Thank you to everyone who posted, "
                          "called and wrote.",
        "posts_title": "Post it",
        "posts_hint": "Pick a post, then share it in one click. Make it your own: you can "
                      "edit the text before it goes out.",
        "suggestion": "Suggested post {n}",
        "share_x": "Post on X", "share_bluesky": "Post on Bluesky",
        "share_mastodon": "Post on Mastodon", "copy_text": "Copy text",
        "copied": "Copied", "copy_failed": "Could not copy: select the text and copy it",
        "for_platforms": "For {platforms}",
        "mastodon_label": "Your Mastodon server",
        "mastodon_hint": "Mastodon has many servers. Say which one is yours, once: this "
                         "browser remembers it.",
        "mastodon_save": "Save", "mastodon_saved": "Mastodon posts go to {instance}",
        "mastodon_bad": "Write the server's name, like mastodon.social",
        "mastodon_needed": "First say which Mastodon server you use",
        "calls_title": "Call",
        "call_button": "Call {number}",
        "call_script": "What to say",
        "call_hours": "When to call",
        "letter_title": "Write a letter",
        "letter_hint": "Fill in the blanks: the letter fills in as you type. Then copy it "
                       "or open it in your e-mail.",
        "letter_preview": "Your letter",
        "letter_copy": "Copy the letter", "letter_mail": "Open in e-mail",
        "letter_to": "To", "letter_subject": "Subject",
        "letter_missing": "Fill in every blank first",
        "other_languages": "Other languages",
        "partners": "For partner organizations: every text on this page as JSON",
        "noscript": "Without JavaScript this page shows the texts as of {when}; the "
                    "countdown and the share buttons for Mastodon, copying and the "
                    "letter need it.",
        "date": "{weekday}, {month} {day}, {year}, {time} ({zone})",
        "weekdays": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
        "months": "January February March April May June July August September "
                  "October November December",
    },
    "es": {
        "language_name": "Español",
        "time_left": "Tiempo restante",
        "days": "días", "day": "día", "hours": "horas", "hour": "hora",
        "minutes": "minutos", "minute": "minuto", "seconds": "segundos", "second": "segundo",
        "closes": "Cierra el {when}",
        "closed_title": "Esta campaña ha terminado",
        "closed_default": "El plazo venció el {when}. Gracias a todas las personas que "
                          "publicaron, llamaron y escribieron.",
        "posts_title": "Publíquelo",
        "posts_hint": "Elija un mensaje y compártalo con un clic. Hágalo suyo: puede "
                      "cambiar el texto antes de publicarlo.",
        "suggestion": "Mensaje sugerido {n}",
        "share_x": "Publicar en X", "share_bluesky": "Publicar en Bluesky",
        "share_mastodon": "Publicar en Mastodon", "copy_text": "Copiar el texto",
        "copied": "Copiado", "copy_failed": "No se pudo copiar: seleccione el texto y cópielo",
        "for_platforms": "Para {platforms}",
        "mastodon_label": "Su servidor de Mastodon",
        "mastodon_hint": "Mastodon tiene muchos servidores. Diga cuál es el suyo una vez: "
                         "este navegador lo recuerda.",
        "mastodon_save": "Guardar", "mastodon_saved": "Los mensajes de Mastodon van a {instance}",
        "mastodon_bad": "Escriba el nombre del servidor, como mastodon.social",
        "mastodon_needed": "Primero diga qué servidor de Mastodon usa",
        "calls_title": "Llame",
        "call_button": "Llamar al {number}",
        "call_script": "Qué decir",
        "call_hours": "Cuándo llamar",
        "letter_title": "Escriba una carta",
        "letter_hint": "Llene los espacios: la carta se completa mientras escribe. Luego "
                       "cópiela o ábrala en su correo.",
        "letter_preview": "Su carta",
        "letter_copy": "Copiar la carta", "letter_mail": "Abrir en el correo",
        "letter_to": "Para", "letter_subject": "Asunto",
        "letter_missing": "Primero llene todos los espacios",
        "other_languages": "Otros idiomas",
        "partners": "Para organizaciones aliadas: todos los textos de esta página en JSON",
        "noscript": "Sin JavaScript esta página muestra los textos del {when}; la cuenta "
                    "regresiva y los botones de Mastodon, copiar y la carta lo necesitan.",
        "date": "{weekday} {day} de {month} de {year}, {time} ({zone})",
        "weekdays": "lunes martes miércoles jueves viernes sábado domingo",
        "months": "enero febrero marzo abril mayo junio julio agosto septiembre octubre "
                  "noviembre diciembre",
    },
}
LANGUAGES = tuple(WORDS)
PLATFORM_NAMES = {"x": "X", "bluesky": "Bluesky", "mastodon": "Mastodon"}


def local_date(at: datetime, lang: str) -> str:
    """`at` (already in the campaign's zone) as a full date in `lang`, without the
    locale module (whose names depend on the machine's installed locales)."""
    w = WORDS[lang]
    return w["date"].format(weekday=w["weekdays"].split()[at.weekday()],
                            month=w["months"].split()[at.month - 1], day=at.day,
                            year=at.year, time=f"{at:%H:%M}", zone=at.tzname() or "")
