// Makes ESC/POS jobs with a real client library, @point-of-sale/receipt-printer-encoder
// (the version pinned in package.json beside this file), and writes, into the directory
// given as the first argument, one NAME.bin per job and manifest.json: what each job asked
// the printer to print. internal/possim's clientjobs test feeds the bytes to the simulated
// printer and compares what it printed with the manifest. Run by that test (or
// `make possim-clientjobs`); the outputs are committed as a golden corpus.
import ReceiptPrinterEncoder from '@point-of-sale/receipt-printer-encoder';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node jobs.mjs OUTDIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

// The test image: black where (x/3 + 2*(y/5)) % 3 == 0, a pattern that a transposed,
// mirrored or shifted image, or one with the bits of a byte reversed, does not match.
// The Go test computes the same function.
function pattern(width, height) {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = (Math.floor(x / 3) + 2 * Math.floor(y / 5)) % 3 === 0 ? 0 : 255;
      data.set([v, v, v, 255], (y * width + x) * 4);
    }
  }
  return { data, width, height };
}

const manifest = [];
function job(name, build, expect) {
  const enc = new ReceiptPrinterEncoder({ columns: 48, imageMode: 'column', feedBeforeCut: 0 });
  build(enc.initialize());
  const bytes = enc.encode();
  writeFileSync(join(out, name + '.bin'), bytes);
  manifest.push({ name, ...expect });
}

job('text-styles', (e) => e
  .align('center').bold(true).line('CORNER SHOP').bold(false)
  .align('left').underline(true).line('Receipt 0042').underline(false)
  .line('Tea                 2.50')
  .size(2, 2).line('TOTAL 12.50').size(1, 1)
  .text('x').width(2).text('W').width(1).text('y').newline()
  .align('right').line('thank you')
  .cut('partial'), {
  lines: [
    { text: 'CORNER SHOP', align: 'center', bold: true },
    { text: 'Receipt 0042', underline: true },
    { text: 'Tea                 2.50' },
    { text: 'TOTAL 12.50', width: 2, height: 2 },
    { text: 'xWy', runs: [{ text: 'x', width: 1 }, { text: 'W', width: 2 }, { text: 'y', width: 1 }] },
    { text: 'thank you', align: 'right' },
  ],
  cuts: 1,
});

job('image-column', (e) => e
  .line('column image')
  .image(pattern(96, 48), { mode: 'column' })
  .line('after')
  .cut(), {
  lines: [{ text: 'column image' }, { text: 'after' }],
  images: [{ width: 96, height: 48, mode: 'column' }],
  cuts: 1,
});

job('image-raster', (e) => e
  .line('raster image')
  .align('center')
  .image(pattern(128, 40), { mode: 'raster' })
  .align('left')
  .cut(), {
  lines: [{ text: 'raster image' }],
  images: [{ width: 128, height: 40, mode: 'raster', align: 'center' }],
  cuts: 1,
});

// [symbology as the encoder takes it, value, the type and data the printer prints]. The
// numbers are GS k function B symbologies (m 65-71: UPC-A ... CODABAR with a length byte)
// that the encoder passes through as given.
const barcodes = [
  ['upca', '01234567890', 'UPC-A', '012345678905'],
  ['upce', '01234565', 'UPC-E', '01234565'],
  ['ean13', '400638133393', 'EAN13', '4006381333931'],
  ['ean8', '9638507', 'EAN8', '96385074'],
  ['code39', 'ABC-123', 'CODE39', 'ABC-123'],
  ['itf', '1234567890', 'ITF', '1234567890'],
  ['codabar', 'A40156B', 'CODABAR', 'A40156B'],
  ['code93', 'CODE93', 'CODE93', 'CODE93'],
  ['code128', 'Code128 test', 'CODE128', 'Code128 test'],
  ['code128', '{BNo.{C' + String.fromCharCode(12, 34, 56), 'CODE128', 'No.123456'],
  [65, '03600029145', 'UPC-A', '036000291452'],
  [67, '5901234123457', 'EAN13', '5901234123457'],
  [69, 'POS 42', 'CODE39', 'POS 42'],
];
job('codes', (e) => {
  e.qrcode('https://example.com/r/0042', { model: 2, size: 6, errorlevel: 'm' });
  for (const [sym, value] of barcodes) {
    e.barcode(value, sym, { height: 60, width: 2, text: 'below' });
  }
  return e.cut();
}, {
  qr: ['https://example.com/r/0042'],
  barcodes: barcodes.map(([, , type, data]) => ({ type, data })),
  cuts: 1,
});

// After the cut, bytes that only feed paper: they start no job of their own.
job('feed-after-cut', (e) => e
  .line('before the cut')
  .cut()
  .newline().newline()
  .raw([0x1b, 0x64, 0x03, 0x1b, 0x4a, 0x30, 0x1b, 0x40, 0x1d, 0x56, 0x42, 0x02]), {
  lines: [{ text: 'before the cut' }],
  cuts: 1,
});

writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
