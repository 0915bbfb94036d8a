// The lightbox: one image of a message at full size in a modal (ui.jsx
// Modal: Esc closes, focus returns to the preview that opened it), its
// name as the dialog's title, a download link, and arrows (buttons and the arrow keys) to the
// message's other images.
import { useEffect } from 'preact/hooks';
import { Modal } from './ui.jsx';
import { fileName, fileUrl } from './files.jsx';

// images: file objects; index: the one shown; onIndex(i): show another.
export function Lightbox({ images, index, onIndex, onClose }) {
  const n = images.length;
  const file = images[index];
  const go = (d) => onIndex((index + d + n) % n);
  useEffect(() => {
    if (n < 2) return undefined;
    const onKey = (e) => {
      if (e.key === 'ArrowLeft') go(-1);
      else if (e.key === 'ArrowRight') go(1);
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [index, n]);
  const name = fileName(file);
  return (
    <Modal title={name} onClose={onClose} wide>
      <figure class="lightbox">
        <div class="lightbox-stage">
          {n > 1 && <button type="button" class="lightbox-nav" aria-label="Previous image" onClick={() => go(-1)}>‹</button>}
          <img class="lightbox-image" src={fileUrl(file)} alt={name}
            width={file.width || undefined} height={file.height || undefined} />
          {n > 1 && <button type="button" class="lightbox-nav" aria-label="Next image" onClick={() => go(1)}>›</button>}
        </div>
        <figcaption class="lightbox-caption">
          {n > 1 && <span class="lightbox-count">{`${index + 1} of ${n}`}</span>}
          <a href={fileUrl(file)} download={name}>Download</a>
        </figcaption>
      </figure>
    </Modal>
  );
}
