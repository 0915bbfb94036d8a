// A QR code as an SVG of <rect>s built with Preact from qrcode-generator's
// module matrix (never its HTML or SVG string output): dark modules on a
// white square with the 4-module quiet zone, whatever the theme (scanners
// need the contrast).
import qrcode from 'qrcode-generator';

// The matrix of `text`: an array of rows of booleans (true: dark).
export function qrMatrix(text, level = 'M') {
  const qr = qrcode(0, level);
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const rows = [];
  for (let r = 0; r < n; r++) {
    const row = [];
    for (let c = 0; c < n; c++) row.push(qr.isDark(r, c));
    rows.push(row);
  }
  return rows;
}

// <QrCode text label size/>: label names the image for assistive technology.
export function QrCode({ text, label, size = 200 }) {
  const m = qrMatrix(text);
  const n = m.length;
  const quiet = 4;
  const rects = [];
  // One rect per horizontal run of dark modules.
  m.forEach((row, r) => {
    let c = 0;
    while (c < n) {
      if (!row[c]) {
        c++;
        continue;
      }
      const start = c;
      while (c < n && row[c]) c++;
      rects.push(<rect key={r + '-' + start} x={start + quiet} y={r + quiet} width={c - start} height="1" />);
    }
  });
  const dim = n + quiet * 2;
  return (
    <svg class="qr-code" role="img" aria-label={label} width={size} height={size}
      viewBox={`0 0 ${dim} ${dim}`} shape-rendering="crispEdges" xmlns="http://www.w3.org/2000/svg">
      <rect width={dim} height={dim} fill="#ffffff" />
      <g fill="#000000">{rects}</g>
    </svg>
  );
}
