// SettingsView: to be built (issue 18).
export function SettingsView() {
  return <div class="todo">SettingsView</div>;
}
