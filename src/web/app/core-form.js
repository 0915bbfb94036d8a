// A form's submit for the core's forms (login, registration, dialogs):
// runs `run(formData)`, keeps the error to show (role=alert) and a busy flag.
import { useState } from 'preact/hooks';

export function useSubmit(run, { onDone } = {}) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      await run(new FormData(e.target));
      setBusy(false);
      if (onDone) onDone();
    } catch (err) {
      setError(err.message || String(err));
      setBusy(false);
    }
  };
  return { error, busy, submit };
}
