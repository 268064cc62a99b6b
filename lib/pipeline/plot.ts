// A small SVG line chart (no dependencies): accuracy against reasoning length,
// one line per arm, for results written by `valr demo` and the benchmarks.

export interface Series {
  name: string;
  points: { x: number; y: number; n?: number }[];
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lineChartSvg(series: readonly Series[], o: { title: string; xLabel: string; yLabel: string; yMax?: number }): string {
  const W = 640, H = 400, L = 70, R = 170, T = 50, B = 60;
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const xMin = xs[0] ?? 0, xMax = xs[xs.length - 1] ?? 1;
  const yMax = o.yMax ?? 1;
  const px = (x: number) => L + (xMax === xMin ? (W - L - R) / 2 : ((x - xMin) / (xMax - xMin)) * (W - L - R));
  const py = (y: number) => T + (1 - y / yMax) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2 - R / 2}" y="24" text-anchor="middle" font-size="15">${esc(o.title)}</text>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const y = (yMax * k) / 5;
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 8}" y="${py(y) + 4}" text-anchor="end">${(y * 100).toFixed(0)}%</text>`);
  }
  for (const x of xs) parts.push(`<text x="${px(x)}" y="${H - B + 18}" text-anchor="middle">${x}</text>`);
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 18}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2.5" points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="4" fill="${c}"><title>${esc(s.name)}: ${(p.y * 100).toFixed(1)}%${p.n ? ` of ${p.n}` : ''}</title></circle>`);
    parts.push(`<rect x="${W - R + 15}" y="${T + i * 22 - 9}" width="14" height="4" fill="${c}"/>`);
    parts.push(`<text x="${W - R + 35}" y="${T + i * 22 - 3}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
