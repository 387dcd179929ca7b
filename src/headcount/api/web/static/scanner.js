// The door's scanner: a gate reads a credential (a barcode scanner types it and presses
// Enter) and the answer is shown in big letters. Each scan gets its own scan_id, so a
// network retry of the same request is applied once.
import { adoptTokenFromUrl, api, ApiError, bindTokenForm } from "./live.js";

adoptTokenFromUrl();
bindTokenForm(() => {});

const form = document.getElementById("scan-form");
const verdict = document.getElementById("verdict");
const REASONS = {
  area_full: "The area is full",
  already_inside: "Already inside: scan an exit first",
  unknown_credential: "Unknown credential",
  credential_other_event: "Credential is for another event",
  malformed_credential: "Not a credential",
  ticket_released: "Ticket was given back after exit",
};

function show(accepted, reason, inside) {
  verdict.hidden = false;
  verdict.dataset.verdict = accepted ? "accepted" : "refused";
  document.getElementById("verdict-word").textContent = accepted ? "ACCEPTED" : "REFUSED";
  document.getElementById("verdict-reason").textContent = reason;
  document.getElementById("verdict-inside").textContent = inside;
}

function describe(scan) {
  const limit = scan.max_occupancy === null ? "" : ` of ${scan.max_occupancy}`;
  return `${scan.inside}${limit} inside`;
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const credential = String(data.get("credential") || "").trim();
    const areaId = String(data.get("area"));
    const direction = String(data.get("direction"));
    const body = { scan_id: crypto.randomUUID(), credential, direction };
    try {
      const scan = await api("POST", `/areas/${encodeURIComponent(areaId)}/scans`, body);
      const what = scan.outcome === "not_inside" ? "Was not inside: recorded"
        : direction === "entry" ? "Welcome in" : "Goodbye";
      show(scan.admitted, what, describe(scan));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      show(false, REASONS[error.code] || error.message, error.message);
    }
    form.credential.value = "";
    form.credential.focus();
  });
}
