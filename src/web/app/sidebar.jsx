// Sidebar: to be built (issue 18).
export function Sidebar() {
  return <div class="todo">Sidebar</div>;
}
