// Makes ESC/POS jobs with a second real client library, node-escpos (@node-escpos/core,
// pinned in package.json and package-lock.json beside this file), and writes them into the
// directory given as the first argument as escpos-NAME.bin and manifest-escpos.json: what
// each job asked the printer to print, in the form jobs.mjs uses. node-escpos sends text in
// GB18030 without FS &, as for a printer that starts in Chinese mode, so these jobs name
// the profile of such a printer.
import { Printer, Image } from '@node-escpos/core';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  console.error('usage: node jobs-escpos.mjs OUTDIR');
  process.exit(2);
}
mkdirSync(out, { recursive: true });

// The same test pattern as jobs.mjs: black where (x/3 + 2*(y/5)) % 3 == 0.
function pattern(width, height) {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = (Math.floor(x / 3) + 2 * Math.floor(y / 5)) % 3 === 0 ? 0 : 255;
      data.set([v, v, v, 255], (y * width + x) * 4);
    }
  }
  return new Image({ data, shape: [width, height, 4] });
}

// An adapter that keeps what the printer is sent.
function bufferAdapter() {
  const chunks = [];
  return {
    chunks,
    write(data, cb) { chunks.push(Buffer.from(data)); cb && cb(); },
    open(cb) { cb && cb(); },
    close(cb) { cb && cb(); },
    read() {},
  };
}

const manifest = [];
async function job(name, build, expect) {
  const adapter = bufferAdapter();
  const printer = new Printer(adapter, { encoding: 'GB18030', width: 48 });
  await build(printer.hardware('init'));
  await printer.flush();
  writeFileSync(join(out, name + '.bin'), Buffer.concat(adapter.chunks));
  manifest.push({ name, profile: 'generic-80', ...expect });
}

await job('escpos-text', (p) => p
  .align('ct').style('B').text('CORNER SHOP')
  .style('NORMAL').align('lt').style('U').text('Receipt 0042')
  .style('NORMAL').size(2, 2).text('TOTAL 12.50')
  .size(1, 1).text('水 2.00')
  .align('rt').text('thank you')
  .align('lt').cut(true, 3), {
  lines: [
    { text: 'CORNER SHOP', align: 'center', bold: true },
    { text: 'Receipt 0042', underline: true },
    { text: 'TOTAL 12.50', width: 2, height: 2 },
    { text: '水 2.00' },
    { text: 'thank you', align: 'right' },
  ],
  cuts: 1,
});

await job('escpos-images', async (p) => {
  p.text('d24');
  await p.image(pattern(48, 40), 'd24');
  p.text('s8');
  await p.image(pattern(48, 40), 's8');
  p.text('raster dwdh');
  p.raster(pattern(48, 40), 'dwdh');
  return p.cut();
}, {
  lines: [{ text: 'd24' }, { text: 's8' }, { text: 'raster dwdh' }],
  // width, height: as printed; scale: dots per source pixel; the pattern is 48x40, the
  // rest white (ESC * pads to whole bands).
  images: [
    { mode: 'column', width: 48, height: 48, scale_x: 1, scale_y: 1, source_width: 48, source_height: 40 },
    { mode: 'column', width: 96, height: 120, scale_x: 2, scale_y: 3, source_width: 48, source_height: 40 },
    { mode: 'raster', width: 96, height: 80, scale_x: 2, scale_y: 2, source_width: 48, source_height: 40 },
  ],
  cuts: 1,
});

await job('escpos-codes', (p) => p
  .qrcode('https://example.com/r/0042', 3, 'M', 6)
  .barcode('590123412345', 'EAN13', { width: 2, height: 60, position: 'blw' })
  .barcode('03600029145', 'UPC_A', { width: 2, height: 60, position: 'blw' })
  .barcode('ABC-123', 'CODE39', { width: 2, height: 60, position: 'blw' })
  // node-escpos sends the length byte right only for 16 bytes or more; width 1 (GS w 2)
  // keeps them on the paper.
  .barcode('{BPOS-RECEIPT-0042', 'CODE128', { width: 1, height: 60, position: 'blw' })
  .cut(), {
  qr: ['https://example.com/r/0042'],
  barcodes: [
    { type: 'EAN13', data: '5901234123457' },
    { type: 'UPC-A', data: '036000291452' },
    { type: 'CODE39', data: 'ABC-123' },
    { type: 'CODE128', data: 'POS-RECEIPT-0042', module: 2 },
  ],
  cuts: 1,
});

writeFileSync(join(out, 'manifest-escpos.json'), JSON.stringify(manifest, null, 2) + '\n');
