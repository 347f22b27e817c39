// Faces drawn on a canvas over the image: boxes, the five landmarks, the 68 points and
// the head pose axes, with one face highlighted. Coordinates in the API's answer are in
// the displayed image's pixels (EXIF orientation applied), as a browser shows it.

const LANDMARK_COLORS = {
  left_eye: '#e53935', right_eye: '#1e88e5', nose: '#fdd835',
  mouth_left: '#d81b60', mouth_right: '#00acc1',
};
const AXIS_COLORS = ['#e53935', '#43a047', '#1e88e5']; // ear to ear, up, facing
const BOX = '#39d353';
const SELECTED = '#ffb300';
const MAX_SIDE = 2048;

const rad = (deg) => (deg * Math.PI) / 180;

function multiply(a, b) {
  return a.map((row) => [0, 1, 2].map((j) => row[0] * b[0][j] + row[1] * b[1][j] + row[2] * b[2][j]));
}

/** The face's axes as image offsets (x right, y down), the server's convention:
 * Rz(roll) @ Ry(yaw) @ Rx(-pitch), orthographic projection. */
export function poseAxes(pose, length) {
  const y = rad(pose.yaw); const p = rad(pose.pitch); const r = rad(pose.roll);
  const ry = [[Math.cos(y), 0, Math.sin(y)], [0, 1, 0], [-Math.sin(y), 0, Math.cos(y)]];
  const rx = [[1, 0, 0], [0, Math.cos(p), Math.sin(p)], [0, -Math.sin(p), Math.cos(p)]];
  const rz = [[Math.cos(r), -Math.sin(r), 0], [Math.sin(r), Math.cos(r), 0], [0, 0, 1]];
  const rot = multiply(multiply(rz, ry), rx);
  return [0, 1, 2].map((j) => [rot[0][j] * length, -rot[1][j] * length]);
}

/** Loads an image URL (blob:, http:, https:); resolves null when it cannot be shown. */
export function loadImage(src) {
  return new Promise((resolve) => {
    const img = new Image();
    img.decoding = 'async';
    img.referrerPolicy = 'no-referrer';
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = src;
  });
}

/**
 * A drawing of `faces` over `img`. `frame` is the answer's `image` ({width, height}),
 * the pixel frame of the coordinates. Returns {canvas, select(index), faceAt(x, y)}.
 */
export function faceCanvas(img, frame, faces) {
  const canvas = document.createElement('canvas');
  const natural = { w: img.naturalWidth, h: img.naturalHeight };
  const fit = Math.min(1, MAX_SIDE / Math.max(natural.w, natural.h));
  canvas.width = Math.round(natural.w * fit);
  canvas.height = Math.round(natural.h * fit);
  const sx = canvas.width / ((frame && frame.width) || natural.w);
  const sy = canvas.height / ((frame && frame.height) || natural.h);
  const ctx = canvas.getContext('2d');
  const line = Math.max(1.5, Math.max(canvas.width, canvas.height) / 500);
  let selected = -1;

  function drawFace(face, index) {
    const on = index === selected;
    const x = face.x * sx; const y = face.y * sy;
    const w = face.width * sx; const h = face.height * sy;
    ctx.lineWidth = on ? line * 2.2 : line;
    ctx.strokeStyle = on ? SELECTED : BOX;
    ctx.strokeRect(x, y, w, h);
    const label = `${index + 1}`;
    ctx.font = `${Math.max(11, Math.round(line * 7))}px system-ui, sans-serif`;
    const pad = 2;
    const tw = ctx.measureText(label).width + pad * 2;
    const th = Math.max(11, Math.round(line * 7)) + pad * 2;
    ctx.fillStyle = on ? SELECTED : BOX;
    ctx.fillRect(x, Math.max(0, y - th), tw, th);
    ctx.fillStyle = '#111';
    ctx.textBaseline = 'top';
    ctx.fillText(label, x + pad, Math.max(0, y - th) + pad);
    const dense = face.landmarks_68;
    if (Array.isArray(dense)) {
      ctx.fillStyle = 'rgba(255,255,255,0.9)';
      for (const [px, py] of dense) {
        ctx.beginPath();
        ctx.arc(px * sx, py * sy, Math.max(1, line / 1.5), 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    const marks = face.landmarks || {};
    if (face.pose && typeof face.pose.yaw === 'number') {
      const nose = marks.nose || [face.x + face.width / 2, face.y + face.height / 2];
      const ox = nose[0] * sx; const oy = nose[1] * sy;
      const length = 0.5 * Math.min(w, h);
      poseAxes(face.pose, length).forEach(([dx, dy], axis) => {
        ctx.strokeStyle = AXIS_COLORS[axis];
        ctx.lineWidth = line + 1;
        ctx.beginPath();
        ctx.moveTo(ox, oy);
        ctx.lineTo(ox + dx, oy + dy);
        ctx.stroke();
      });
    }
    for (const [name, point] of Object.entries(marks)) {
      if (!Array.isArray(point)) continue;
      ctx.fillStyle = LANDMARK_COLORS[name] || BOX;
      ctx.beginPath();
      ctx.arc(point[0] * sx, point[1] * sy, line + 1, 0, 2 * Math.PI);
      ctx.fill();
    }
  }

  function redraw() {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
    if (selected >= 0) {
      ctx.fillStyle = 'rgba(0,0,0,0.35)';
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      const f = faces[selected];
      ctx.drawImage(img, f.x * sx / fit, f.y * sy / fit, f.width * sx / fit, f.height * sy / fit,
        f.x * sx, f.y * sy, f.width * sx, f.height * sy);
    }
    faces.forEach((face, index) => { if (index !== selected) drawFace(face, index); });
    if (selected >= 0) drawFace(faces[selected], selected);
  }

  redraw();
  return {
    canvas,
    select(index) {
      selected = index;
      redraw();
    },
    /** The smallest face under a click (client coordinates), or -1. */
    faceAt(clientX, clientY) {
      const rect = canvas.getBoundingClientRect();
      const x = ((clientX - rect.left) * canvas.width) / rect.width / sx;
      const y = ((clientY - rect.top) * canvas.height) / rect.height / sy;
      let best = -1;
      faces.forEach((f, i) => {
        if (x >= f.x && x <= f.x + f.width && y >= f.y && y <= f.y + f.height
          && (best < 0 || f.width * f.height < faces[best].width * faces[best].height)) best = i;
      });
      return best;
    },
  };
}
